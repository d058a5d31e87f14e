/**
 * Crash safety: the toy pipeline is killed with SIGKILL at random moments (1 to 3 times per
 * trial), while an observer keeps checking that every artifact visible in the store is complete
 * and intact. A final rerun must then produce files byte-identical to an uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import {
  artifactFiles,
  mulberry32,
  runToyCli,
  sleep,
  spawnToyCli,
  tempDir,
  toyExperiments,
} from "./helpers.ts";

const TRIALS = 20;
const SEED = Number(Deno.env.get("CRASH_TEST_SEED") ?? 20261126);

async function assertStoreIntact(cache: string, when: string): Promise<void> {
  const store = new ArtifactStore(cache);
  for (const { stage, key } of await store.list()) {
    assert.deepEqual(await store.verify(stage, key), [], `${when}: ${stage}/${key} is not whole`);
  }
}

Deno.test(`kill -9 at random moments (${TRIALS} trials): no partial artifact is ever visible, reruns converge`, async () => {
  const base = await tempDir("cm-crash-");
  const env = await toyExperiments(base, {
    toy_a: { work_ms: 25, chunks: 6, chunk_bytes: 50_000 },
  });
  const args = (cache: string) => ["pipeline", "toy_a", "--cache", cache];

  const refCache = join(base, "reference");
  const t0 = performance.now();
  const ref = await runToyCli(args(refCache), env);
  const refMs = performance.now() - t0;
  assert.equal(ref.code, 0, ref.stderr);
  const expected = await artifactFiles(refCache);
  assert.equal(expected.size, 9); // 6 chunks + source.txt (gen), lines.txt, results.json
  const rng = mulberry32(SEED);
  // Kill delays are drawn from [0, horizon]. The horizon adapts to the machine's current speed
  // (tests run in parallel, so one measured run says little): shorter after a run that finished
  // before its kill, longer after one that was killed.
  let horizon = refMs;
  const outcomes: string[] = [];
  let resumedRuns = 0;

  for (let trial = 0; trial < TRIALS; trial++) {
    const cache = join(base, `trial-${trial}`);
    const kills = 1 + (trial % 3);
    for (let k = 0; k < kills; k++) {
      const child = spawnToyCli(args(cache), env);
      const delay = rng() * horizon;
      const start = performance.now();
      // Observe the store while the victim runs: a half-published artifact would show up here.
      while (performance.now() - start < delay) {
        await assertStoreIntact(cache, `trial ${trial} (seed ${SEED}) during run ${k}`);
        await sleep(3);
      }
      try {
        child.kill("SIGKILL");
      } catch { /* it may have finished already */ }
      const st = await child.status;
      await child.stdout.cancel();
      await child.stderr.cancel();
      outcomes.push(st.signal === "SIGKILL" ? "killed" : `exit ${st.code}`);
      horizon *= st.signal === "SIGKILL" ? 1.05 : 0.8;
      await assertStoreIntact(cache, `trial ${trial} (seed ${SEED}) after kill ${k}`);
    }
    const final = await runToyCli(args(cache), env);
    assert.equal(final.code, 0, `trial ${trial}: ${final.stderr}`);
    if (/ resumed /.test(final.stdout)) resumedRuns++;
    const got = await artifactFiles(cache);
    assert.deepEqual(
      [...got.keys()].sort(),
      [...expected.keys()].sort(),
      `trial ${trial}: file set`,
    );
    for (const [path, bytes] of expected) {
      assert.deepEqual(got.get(path), bytes, `trial ${trial} (seed ${SEED}): ${path} differs`);
    }
  }
  // The schedule must actually interrupt runs, or the test proves nothing.
  const killed = outcomes.filter((o) => o === "killed").length;
  assert.ok(killed >= TRIALS, `only ${killed} of ${outcomes.length} runs were killed mid-way`);
  assert.ok(resumedRuns >= 3, `only ${resumedRuns} final runs resumed an interrupted stage`);
  await Deno.remove(base, { recursive: true });
});
