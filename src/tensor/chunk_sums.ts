/**
 * Column sums that a kernel computes on the side of its main output, as partial sums per chunk
 * of rows (ops "layernorm_backward", "gelu_dropout_backward"): the gradients of LayerNorm's gamma
 * and beta, and of the bias of the Linear before the FFN's GELU. The op table fixes their order
 * (per chunk: 8 groups of CHUNK_ROWS / 8 consecutive rows, each summed in row order from 0, then
 * the groups added from 0 in order), so the sums do not depend on threads or on the backend; the
 * chunks are then added in order by `addChunks` (sum_rows over the chunk axis).
 */
import { Tensor } from "./tensor.ts";

/**
 * Rows per chunk: 64 keeps the partials (a few cols floats per chunk) under 2 % of a call's
 * traffic while a conmamba_large batch (12,480 rows) still gives 195 chunks, each a block of 8
 * warps on the GPU.
 */
export const CHUNK_ROWS = 64;

/** The chunk-split fields of such an op's parameters for `rows` rows. */
export function chunkFields(rows: number): { chunk_rows: number; chunks: number; chunk0: number } {
  return { chunk_rows: CHUNK_ROWS, chunks: Math.ceil(rows / CHUNK_ROWS), chunk0: 0 };
}

/**
 * out (cols) (+)= the sum over chunks, in order, of columns [col0, col0 + cols) of part
 * (chunks, width): one sum_rows call.
 */
export function addChunks(
  part: Tensor,
  col0: number,
  cols: number,
  out: Tensor,
  accumulate: boolean,
): void {
  const [chunks, ...rest] = part.shape, width = rest.reduce((a, b) => a * b, 1);
  part.backend.run("sum_rows", { rows: chunks, cols, ld: width, accumulate: accumulate ? 1 : 0 }, [
    { storage: part.storage, offset: col0 },
    { storage: out.storage },
  ]);
}
