/**
 * Levenshtein alignment of two token lists with unit costs, as SpeechBrain's
 * `utils/edit_distance.py` (`op_table` + `alignment`) computes it — CONMAMBA_SPEC.md §11.
 *
 * Tie-breaking while filling the table follows Kaldi's `compute-wer`: the diagonal move (match or
 * substitution) only if strictly cheaper than both insertion and deletion, else deletion if
 * strictly cheaper than insertion, else insertion. Ties therefore prefer I over D over S. The
 * backtrace follows the stored operation of each cell from the bottom-right corner.
 */

/** Edit symbols as SpeechBrain prints them. */
export type EditOp = "=" | "S" | "I" | "D";

/** One column of an alignment: indices into ref / hyp, null on the side that has no token. */
export interface AlignedPair {
  op: EditOp;
  ref: number | null;
  hyp: number | null;
}

const EQ = 0, SUB = 1, INS = 2, DEL = 3;
const SYMBOL: readonly EditOp[] = ["=", "S", "I", "D"];

/**
 * The operation table, row-major (ref.length + 1, hyp.length + 1): the move that reaches each
 * cell. Row 0 is all insertions, column 0 all deletions, cell (0, 0) a match.
 */
export function opTable(ref: readonly string[], hyp: readonly string[]): Uint8Array {
  const n = ref.length, m = hyp.length, w = m + 1;
  const table = new Uint8Array((n + 1) * w); // (n + 1, m + 1), EQ everywhere
  let prev = new Int32Array(w); // cost row i - 1, (m + 1)
  let curr = new Int32Array(w); // cost row i, (m + 1)
  for (let j = 0; j <= m; j++) {
    prev[j] = j;
    table[j] = INS;
  }
  table[0] = EQ;
  for (let i = 1; i <= n; i++) {
    curr[0] = i;
    table[i * w] = DEL;
    const r = ref[i - 1];
    for (let j = 1; j <= m; j++) {
      const ins = curr[j - 1] + 1;
      const del = prev[j] + 1;
      const diff = r === hyp[j - 1] ? 0 : 1;
      const diag = prev[j - 1] + diff;
      if (diag < ins && diag < del) {
        curr[j] = diag;
        if (diff) table[i * w + j] = SUB;
      } else if (del < ins) {
        curr[j] = del;
        table[i * w + j] = DEL;
      } else {
        curr[j] = ins;
        table[i * w + j] = INS;
      }
    }
    [prev, curr] = [curr, prev];
  }
  return table;
}

/** Backtrace of `opTable` into the alignment, first column first. */
export function backtrace(table: Uint8Array, refLength: number, hypLength: number): AlignedPair[] {
  const w = hypLength + 1;
  if (table.length !== (refLength + 1) * w) {
    throw new RangeError(`op table has ${table.length} cells, not (${refLength}+1)x(${w})`);
  }
  const out: AlignedPair[] = [];
  let i = refLength, j = hypLength;
  while (i > 0 || j > 0) {
    const code = i === 0 ? INS : j === 0 ? DEL : table[i * w + j];
    if (code === INS) out.push({ op: "I", ref: null, hyp: --j });
    else if (code === DEL) out.push({ op: "D", ref: --i, hyp: null });
    else out.push({ op: SYMBOL[code], ref: --i, hyp: --j });
  }
  return out.reverse();
}

/** Aligns hypothesis tokens to reference tokens (§11). */
export function align(ref: readonly string[], hyp: readonly string[]): AlignedPair[] {
  return backtrace(opTable(ref, hyp), ref.length, hyp.length);
}
