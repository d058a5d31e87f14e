/** Best-of-n wall-clock timing for the benchmarks (one warm-up call first). */
export function bestSeconds(fn: () => void, repeats = 5): number {
  fn();
  let t = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1000;
}
