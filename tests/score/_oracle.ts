/**
 * Independent references for the scorer tests: a seeded random generator of reference/hypothesis
 * pairs, and an edit-distance oracle with arbitrary weights that reports, over all optimal
 * alignments, the range of each edit count (no tie-breaking, so it knows every optimum).
 */
import { mulberry32 } from "../../src/util/rng.ts";

/** mulberry32 (src/util/rng.ts): small, seeded, repeatable. */
export const rng = mulberry32;

export const VOCAB = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "big", "red"];

export interface Pair {
  id: string;
  ref: string[];
  /** [] is an empty hypothesis */
  hyp: string[];
}

/**
 * Random pairs: references of 1..20 words; hypotheses are the reference with random
 * substitutions, deletions and insertions (most), an unrelated random sentence (some), or empty.
 */
export function randomPairs(seed: number, count: number): Pair[] {
  const r = rng(seed);
  const word = () => VOCAB[Math.floor(r() * VOCAB.length)];
  const pairs: Pair[] = [];
  for (let k = 0; k < count; k++) {
    const ref = Array.from({ length: 1 + Math.floor(r() * 20) }, word);
    let hyp: string[] = [];
    const kind = r();
    if (kind < 0.05) hyp = [];
    else if (kind < 0.15) hyp = Array.from({ length: Math.floor(r() * 20) }, word);
    else {
      const rate = 0.4 * r();
      for (const w of ref) {
        const e = r();
        if (e < rate / 3) hyp.push(word()); // substitution (or an accidental match)
        else if (e < (2 * rate) / 3) { /* deletion */ }
        else hyp.push(w);
        if (r() < rate / 3) hyp.push(word()); // insertion
      }
    }
    pairs.push({ id: `utt${String(k).padStart(4, "0")}`, ref, hyp });
  }
  return pairs;
}

export interface Range {
  min: number;
  max: number;
}

export interface Optimum {
  cost: number;
  sub: Range;
  del: Range;
  ins: Range;
  errors: Range;
}

/** Minimal weighted cost of aligning hyp to ref, and the edit-count ranges over all optima. */
export function optimum(
  ref: readonly string[],
  hyp: readonly string[],
  w: { sub: number; del: number; ins: number },
): Optimum {
  type Cell = { cost: number; s: Range; d: Range; i: Range; e: Range };
  const none = (): Range => ({ min: Infinity, max: -Infinity });
  const grid: Cell[][] = [];
  for (let a = 0; a <= ref.length; a++) {
    grid.push([]);
    for (let b = 0; b <= hyp.length; b++) {
      const cell: Cell = { cost: Infinity, s: none(), d: none(), i: none(), e: none() };
      if (a === 0 && b === 0) {
        cell.cost = 0;
        cell.s =
          cell.d =
          cell.i =
          cell.e =
            { min: 0, max: 0 };
      }
      const moves: [Cell | undefined, number, number, number, number][] = [];
      if (a > 0 && b > 0) {
        const same = ref[a - 1] === hyp[b - 1];
        moves.push([grid[a - 1][b - 1], same ? 0 : w.sub, same ? 0 : 1, 0, 0]);
      }
      if (a > 0) moves.push([grid[a - 1][b], w.del, 0, 1, 0]);
      if (b > 0) moves.push([grid[a][b - 1], w.ins, 0, 0, 1]);
      for (const [from, c, ds, dd, di] of moves) {
        if (!from) continue;
        const cost = from.cost + c;
        if (cost > cell.cost) continue;
        if (cost < cell.cost) {
          cell.cost = cost;
          cell.s = none(), cell.d = none(), cell.i = none(), cell.e = none();
        }
        const widen = (r: Range, f: Range, k: number) => {
          r.min = Math.min(r.min, f.min + k);
          r.max = Math.max(r.max, f.max + k);
        };
        widen(cell.s, from.s, ds);
        widen(cell.d, from.d, dd);
        widen(cell.i, from.i, di);
        widen(cell.e, from.e, ds + dd + di);
      }
      grid[a].push(cell);
    }
  }
  const last = grid[ref.length][hyp.length];
  return { cost: last.cost, sub: last.s, del: last.d, ins: last.i, errors: last.e };
}
