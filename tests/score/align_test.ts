import assert from "node:assert/strict";
import { align, opTable } from "../../src/score/align.ts";
import { optimum, randomPairs } from "./_oracle.ts";

const w = (s: string) => (s === "" ? [] : s.split(" "));
/** The alignment as "op:ref/hyp" columns, "-" for a missing side. */
function show(ref: string[], hyp: string[]): string {
  return align(ref, hyp)
    .map((p) => `${p.op}:${p.ref === null ? "-" : ref[p.ref]}/${p.hyp === null ? "-" : hyp[p.hyp]}`)
    .join(" ");
}

// Each case names the cell decision it exercises (§11: diagonal only if strictly cheapest, else
// deletion if strictly cheaper than insertion, else insertion).
Deno.test("align: diagonal strictly cheapest gives match / substitution", () => {
  assert.equal(show(w("a b c"), w("a x c")), "=:a/a S:b/x =:c/c");
});

Deno.test("align: insertion strictly cheapest", () => {
  assert.equal(show(w("a"), w("a b")), "=:a/a I:-/b");
});

Deno.test("align: deletion strictly cheapest", () => {
  assert.equal(show(w("a b"), w("a")), "=:a/a D:b/-");
});

Deno.test("align: diagonal ties deletion -> deletion (the early match is kept)", () => {
  // Cell (2,1) of "a a a" / "a": del 1 = diag 1 < ins 3, so D; the lone "a" matches the first.
  assert.equal(show(w("a a a"), w("a")), "=:a/a D:a/- D:a/-");
  const t = opTable(w("a a a"), w("a"));
  assert.deepEqual(Array.from(t), [0, 2, 3, 0, 3, 3, 3, 3]); // EQ=0 SUB=1 INS=2 DEL=3
});

Deno.test("align: diagonal ties insertion -> insertion", () => {
  // Cell (1,2) of "a" / "x y": ins 2 = diag 2 < del 3, so I; x substitutes a.
  assert.equal(show(w("a"), w("x y")), "S:a/x I:-/y");
});

Deno.test("align: three-way tie -> insertion: 1 del + 1 ins instead of 2 sub", () => {
  // Cell (2,2) of "a b" / "b a": ins = del = diag = 2. Same total (2), other breakdown.
  assert.equal(show(w("a b"), w("b a")), "D:a/- =:b/b I:-/a");
});

Deno.test("align: deletion ties insertion, diagonal dearer -> insertion", () => {
  // Last cell of "a b a" / "b a b": ins = del = 2 < diag 3, so the final "b" is an insertion.
  assert.equal(show(w("a b a"), w("b a b")), "D:a/- =:b/b =:a/a I:-/b");
});

Deno.test("align: empty sides are all insertions or all deletions", () => {
  assert.equal(show([], w("a b")), "I:-/a I:-/b");
  assert.equal(show(w("a b"), []), "D:a/- D:b/-");
  assert.deepEqual(align([], []), []);
});

Deno.test("align: the empty hypothesis [''] substitutes the first word, deletes the rest", () => {
  assert.equal(show(w("a b c"), [""]), "S:a/ D:b/- D:c/-");
});

/** Kaldi-order table filled the obvious way (full cost matrix), then the same backtrace. */
function slowAlign(ref: string[], hyp: string[]): string {
  const n = ref.length, m = hyp.length;
  const cost: number[][] = [], op: string[][] = [];
  for (let i = 0; i <= n; i++) {
    cost.push([]), op.push([]);
    for (let j = 0; j <= m; j++) {
      if (i === 0 || j === 0) {
        cost[i].push(i + j), op[i].push(i === 0 ? (j === 0 ? "=" : "I") : "D");
        continue;
      }
      const ins = cost[i][j - 1] + 1, del = cost[i - 1][j] + 1;
      const diag = cost[i - 1][j - 1] + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      if (diag < ins && diag < del) {
        cost[i].push(diag), op[i].push(diag === cost[i - 1][j - 1] ? "=" : "S");
      } else if (del < ins) cost[i].push(del), op[i].push("D");
      else cost[i].push(ins), op[i].push("I");
    }
  }
  const out: string[] = [];
  for (let i = n, j = m; i > 0 || j > 0;) {
    const o = op[i][j];
    out.push(o);
    if (o !== "I") i--;
    if (o !== "D") j--;
  }
  return out.reverse().join("");
}

Deno.test("align: random pairs: equals the slow Kaldi-order reference, total is the edit distance", () => {
  for (const { ref, hyp } of randomPairs(7, 2000)) {
    const a = align(ref, hyp);
    assert.equal(a.map((p) => p.op).join(""), slowAlign(ref, hyp));
    // The columns spell both sides in order; "=" pairs equal tokens, "S" unequal ones.
    assert.deepEqual(a.filter((p) => p.ref !== null).map((p) => p.ref), ref.map((_, i) => i));
    assert.deepEqual(a.filter((p) => p.hyp !== null).map((p) => p.hyp), hyp.map((_, j) => j));
    for (const p of a) {
      if (p.op === "=") assert.equal(ref[p.ref!], hyp[p.hyp!]);
      if (p.op === "S") assert.notEqual(ref[p.ref!], hyp[p.hyp!]);
    }
    const errors = a.filter((p) => p.op !== "=").length;
    assert.equal(errors, optimum(ref, hyp, { sub: 1, del: 1, ins: 1 }).cost);
  }
});
