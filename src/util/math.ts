/** Small numeric helpers shared across the project. */

/** torch.round: half to even (22.5 -> 22), as the recipe's length arithmetic uses it. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * log(exp(a) + exp(b)) without overflow; -Infinity is the identity. Computed as
 * max + log(exp(0) + exp(min - max)) with exp(0) = 1 taken as known and exp(d) = 0 for
 * d < -746 (where it underflows anyway), so the bits are those of the textbook
 * m + log(exp(a - m) + exp(b - m)) with one exp fewer (hot in the CTC searches), for every input
 * but +Infinity (log-probabilities never are; there the textbook form gives NaN).
 */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  let m: number, d: number;
  if (a > b) (m = a, d = b - a);
  else (m = b, d = a - b);
  return d < -746 ? m + 0 : m + Math.log(1 + Math.exp(d)); // + 0: -0 becomes +0, as there
}
