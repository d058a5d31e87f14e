/**
 * Column sums that a kernel computes on the side of its main output, as partial sums per chunk
 * of rows (ops "layernorm_backward", "gelu_dropout_backward"): the gradients of LayerNorm's gamma
 * and beta, and of the bias of the Linear before the FFN's GELU. The op table fixes their order
 * (per chunk: 8 groups of CHUNK_ROWS / 8 consecutive rows, each summed in row order from 0, then
 * the groups added from 0 in order), so the sums do not depend on threads or on the backend; the
 * chunks are then added in order by sum_rows over the chunk axis (`runChunked`).
 */
import type { Backend } from "./backend.ts";
import { Tensor } from "./tensor.ts";

/**
 * Rows per chunk: 64 keeps the partials (a few cols floats per chunk) under 2 % of a call's
 * traffic while a conmamba_large batch (12,480 rows) still gives 195 chunks, each a block of 8
 * warps on the GPU.
 */
export const CHUNK_ROWS = 64;

/** Column sums an op writes on the side of its output: added to `out` when `accumulate`. */
export interface ColumnSums {
  out: Tensor;
  accumulate: boolean;
}

/** A column range [col0, col0 + out.size) of the partials, summed onto `out`. */
export interface ChunkTarget extends ColumnSums {
  col0: number;
}

/**
 * Runs one such op over `rows` rows: `run` gets the chunk-split fields of its parameters and the
 * partials buffer (chunks, width), or null when there is no target (the op then writes no sums);
 * afterwards each target gets its columns of the partials summed over the chunks in order (one
 * sum_rows call each), and the partials are freed.
 */
export function runChunked(
  be: Backend,
  rows: number,
  width: number,
  targets: readonly ChunkTarget[],
  run: (
    fields: { chunk_rows: number; chunks: number; chunk0: number },
    part: Tensor | null,
  ) => void,
): void {
  const fields = { chunk_rows: CHUNK_ROWS, chunks: Math.ceil(rows / CHUNK_ROWS), chunk0: 0 };
  const part = targets.length ? Tensor.empty(be, [fields.chunks, width]) : null;
  run(fields, part);
  if (!part) return;
  for (const t of targets) {
    be.run("sum_rows", {
      rows: fields.chunks,
      cols: t.out.size,
      ld: width,
      accumulate: t.accumulate ? 1 : 0,
    }, [{ storage: part.storage, offset: t.col0 }, { storage: t.out.storage }]);
  }
  part.free();
}
