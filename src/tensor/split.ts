/**
 * Splitting one kernel call into independent calls for a thread pool, following the op table's
 * `split` and argument `layout` (ffi/ops.ts). Each part keeps every output element's arithmetic
 * unchanged, so the result is bitwise the same for any number of parts.
 */
import type { AxisSplit, OpSpec } from "../../ffi/ops.ts";

export interface Part {
  /** The parameter struct of this part (the size field along the split shrunk). */
  params: Record<string, number>;
  /** Element offset to add to each pointer argument, in table order. */
  offsets: number[];
}

/** Units a split range is rounded to: 4 rows of a matmul tile, 4 lanes of an f32x4. */
const UNIT = { elements: 4, rows: 1, cols: 4, matmul_rows: 4 } as const;

/**
 * Evaluates a product of parameter fields and integers ("seqlen*ld_u", "4*time*lattice", "0").
 * An unknown field is an error in the op table, reported with the op's name.
 */
export function evalProduct(
  expr: string,
  p: Readonly<Record<string, number>>,
  what: string,
): number {
  return expr.split("*").reduce((acc, f) => {
    const factor = f.trim();
    const v = /^\d+$/.test(factor) ? Number(factor) : p[factor];
    if (v === undefined) throw new Error(`${what}: "${factor}" is not a parameter field`);
    return acc * v;
  }, 1);
}

const isAxis = (s: OpSpec["split"]): s is AxisSplit => typeof s === "object";

/** Size along the split axis and the work (elementary operations) of the whole call. */
function extent(op: OpSpec, p: Readonly<Record<string, number>>): { size: number; work: number } {
  const s = op.split;
  if (isAxis(s)) {
    const size = p[s.axis] ?? 0;
    return { size, work: size * evalProduct(s.work, p, op.name) };
  }
  switch (s) {
    case "elements":
      return { size: p.n, work: p.n };
    case "rows":
      return { size: p.rows, work: p.rows * p.cols };
    case "cols":
      return { size: p.cols, work: p.rows * p.cols };
    case "matmul_rows":
      return { size: p.m, work: p.batch * p.m * p.n * p.k };
  }
}

/**
 * Splits a call into at most `maxParts` parts of at least `minWork` work each (1 part when small).
 */
export function splitCall(
  op: OpSpec,
  params: Readonly<Record<string, number>>,
  maxParts: number,
  minWork: number,
): Part[] {
  const { size, work } = extent(op, params);
  const unit = isAxis(op.split) ? op.split.unit ?? 1 : UNIT[op.split];
  const units = Math.ceil(size / unit);
  const parts = Math.max(1, Math.min(maxParts, units, Math.floor(work / Math.max(minWork, 1))));
  const out: Part[] = [];
  for (let i = 0; i < parts; i++) {
    const begin = Math.min(size, Math.floor((units * i) / parts) * unit);
    const end = Math.min(size, Math.floor((units * (i + 1)) / parts) * unit);
    if (end > begin) out.push(part(op, params, begin, end));
  }
  if (out.length === 0) out.push(part(op, params, 0, size));
  return out;
}

/**
 * Part [begin, end) of a call. Offsets count float32 slots: an argument stored as packed bf16
 * (its `packedIf` field set) moves by half its element offset, which must be even (a part
 * starting mid-slot would need a 2-byte pointer; splits in units of 4 rows or elements of even
 * rows never do).
 */
function part(
  op: OpSpec,
  p: Readonly<Record<string, number>>,
  begin: number,
  end: number,
): Part {
  const r = elementPart(op, p, begin, end);
  op.args.forEach((a, i) => {
    if (!a.packedIf || !p[a.packedIf]) return;
    if (r.offsets[i] % 2 !== 0) {
      throw new Error(
        `${op.name}: packed bf16 argument ${a.name} would start mid-slot (element ${r.offsets[i]})`,
      );
    }
    r.offsets[i] /= 2;
  });
  return r;
}

/** Part [begin, end) with every offset in elements. */
function elementPart(
  op: OpSpec,
  p: Readonly<Record<string, number>>,
  begin: number,
  end: number,
): Part {
  const params = { ...p };
  const n = end - begin;
  if (op.splitBase) params[op.splitBase] = (p[op.splitBase] ?? 0) + begin;
  const s = op.split;
  if (isAxis(s)) {
    params[s.axis] = n;
    return {
      params,
      offsets: op.args.map((a) => {
        if (a.move === undefined) throw new Error(`${op.name}: argument ${a.name} lacks move`);
        return begin * evalProduct(a.move, p, `${op.name}.${a.name}`);
      }),
    };
  }
  switch (s) {
    case "elements":
      params.n = n;
      return { params, offsets: op.args.map(() => begin) };
    case "rows":
      params.rows = n;
      return {
        params,
        offsets: op.args.map((a) =>
          a.layout === "matrix" ? begin * p.ld : a.layout === "per_row" ? begin : 0
        ),
      };
    case "cols":
      params.cols = n;
      return {
        params,
        offsets: op.args.map((a) => a.layout === "matrix" || a.layout === "per_col" ? begin : 0),
      };
    case "matmul_rows":
      params.m = n;
      return {
        params,
        offsets: op.args.map((a) =>
          a.name === "a"
            ? (p.trans_a ? begin : begin * p.lda)
            : a.name === "c" || a.name === "y"
            ? begin * p.ldc
            : 0
        ),
      };
  }
}
