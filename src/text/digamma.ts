/**
 * The digamma function psi(x) = d/dx ln Gamma(x) for x > 0, which SentencePiece's M step uses
 * in place of log (the "Bayesian EM" with a sparse prior: score = psi(count) - psi(total)).
 * Recurrence psi(x) = psi(x + 1) - 1/x up to x >= 6, then the asymptotic series
 * ln x - 1/(2x) - sum B_2k / (2k x^2k); error below 1e-12 there.
 */
export function digamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`digamma: ${x} is not positive`);
  let acc = 0;
  for (; x < 6; x++) acc -= 1 / x;
  const r = 1 / (x * x);
  // Bernoulli terms: 1/12, -1/120, 1/252, -1/240, 1/132, -691/32760.
  const series = r *
    (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r * (1 / 132 - r * 691 / 32760)))));
  return acc + Math.log(x) - 0.5 / x - series;
}
