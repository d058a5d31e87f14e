/**
 * How many threads compute may use: `--threads N` on the command line (which sets
 * CONMAMBA_THREADS for the run), else every core. Results never depend on it (every kernel
 * split is bitwise neutral), so it is not part of any key.
 */
export function defaultThreads(): number {
  const env = Number(Deno.env.get("CONMAMBA_THREADS"));
  return Number.isInteger(env) && env > 0 ? env : navigator.hardwareConcurrency;
}
