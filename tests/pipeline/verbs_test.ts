/** The CLI verbs on the toy product, as a user runs them (subprocesses, real exit codes). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exists } from "../../src/pipeline/fs_util.ts";
import { runToyCli, spawnToyCli, tempDir, toyExperiments, waitForPath } from "./helpers.ts";

async function setup(experiments: Record<string, object> = { toy_a: {} }) {
  const base = await tempDir();
  const env = await toyExperiments(base, experiments);
  const cache = join(base, "cache");
  const cli = (...args: string[]) => runToyCli([...args, "--cache", cache], env);
  return { base, env, cache, cli };
}

function artifactKeys(cache: string, stage: string): Promise<string[]> {
  return Array.fromAsync(Deno.readDir(join(cache, "artifacts", stage)), (e) => e.name)
    .then((k) => k.sort());
}

Deno.test("verify finds a flipped byte, a missing file and an extra file; exit 1", async () => {
  const { base, cache, cli } = await setup();
  assert.equal((await cli("pipeline", "toy_a")).code, 0);
  const ok = await cli("verify");
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /3 artifact\(s\) checked .*: 3 intact, 0 corrupt/);

  const [genKey] = await artifactKeys(cache, "gen");
  const chunk = join(cache, "artifacts", "gen", genKey, "chunks", "0002.bin");
  const bytes = await Deno.readFile(chunk);
  bytes[1234] ^= 0x01; // one bit
  await Deno.writeFile(chunk, bytes);
  const [scoreKey] = await artifactKeys(cache, "score");
  await Deno.remove(join(cache, "artifacts", "score", scoreKey, "results.json"));
  const [trKey] = await artifactKeys(cache, "transform");
  await Deno.writeTextFile(join(cache, "artifacts", "transform", trKey, "stray.txt"), "x");

  const bad = await cli("verify");
  assert.equal(bad.code, 1);
  assert.match(
    bad.stdout,
    new RegExp(`CORRUPT gen/${genKey}\\n  chunks/0002.bin: content differs`),
  );
  assert.match(bad.stdout, new RegExp(`CORRUPT score/${scoreKey}\\n  results.json: missing`));
  assert.match(bad.stdout, /stray.txt: not in the manifest/);
  assert.match(bad.stdout, /3 artifact\(s\) checked .*: 0 intact, 3 corrupt/);
  await Deno.remove(base, { recursive: true });
});

Deno.test("gc keeps what current experiments reach, removes the rest; --dry-run removes nothing", async () => {
  const { base, env, cache, cli } = await setup({ toy_a: {}, toy_b: { seed: 2 } });
  assert.equal((await cli("pipeline", "toy_a")).code, 0);
  assert.equal((await cli("pipeline", "toy_b")).code, 0);
  assert.equal((await cli("pipeline", "toy_a", "--scale", "7")).code, 0); // an override: unreachable
  assert.equal((await artifactKeys(cache, "transform")).length, 3);

  const dry = await cli("gc", "--dry-run");
  assert.equal(dry.code, 0);
  assert.match(dry.stdout, /would remove 2 item\(s\)/);
  assert.equal((await artifactKeys(cache, "transform")).length, 3, "dry run deletes nothing");

  const gc = await cli("gc");
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed artifact transform\/[0-9a-f]{64}/);
  assert.match(gc.stdout, /removed artifact score\/[0-9a-f]{64}/);
  assert.equal((await artifactKeys(cache, "transform")).length, 2);
  assert.equal((await artifactKeys(cache, "gen")).length, 2);
  const st = JSON.parse((await cli("status", "toy_a", "--json")).stdout);
  assert.deepEqual(st.stages.map((s: { state: string }) => s.state), ["done", "done", "done"]);

  // Drop toy_b from the current experiments: its artifacts become unreachable.
  const env2 = await toyExperiments(base, { toy_a: {} });
  assert.equal(env2.TOY_EXPERIMENTS, env.TOY_EXPERIMENTS);
  const gc2 = await cli("gc");
  assert.match(gc2.stdout, /removed 3 item\(s\)/);
  assert.equal((await artifactKeys(cache, "gen")).length, 1);
  await Deno.remove(base, { recursive: true });
});

Deno.test("status shows done / partial / missing with keys; --json for machines", async () => {
  // 200 ms per chunk: transform runs ~1.2 s, a wide window for the kill even on a loaded machine
  // (60 ms once let transform finish before the SIGKILL landed).
  const { base, env, cache, cli } = await setup({ toy_a: { work_ms: 200 } });
  const empty = JSON.parse((await cli("status", "toy_a", "--json")).stdout);
  assert.deepEqual(
    empty.stages.map((
      s: { stage: string; state: string; waitsOn: string | null },
    ) => [s.stage, s.state, s.waitsOn]),
    [["gen", "missing", null], ["transform", "missing", "gen"], ["score", "missing", "gen"]],
  );
  assert.equal(await exists(cache), false, "status does not create the cache");

  // Interrupt the first run inside transform: gen done, transform partial, score unknown.
  const victim = spawnToyCli(["pipeline", "toy_a", "--cache", cache], env);
  await waitForPath(join(cache, "partial", "transform"));
  victim.kill("SIGKILL");
  await victim.status;
  await victim.stdout.cancel();
  await victim.stderr.cancel();
  const mid = JSON.parse((await cli("status", "toy_a", "--json")).stdout);
  assert.deepEqual(mid.stages.map((s: { state: string }) => s.state), [
    "done",
    "partial",
    "missing",
  ]);
  assert.match(mid.stages[0].key, /^[0-9a-f]{64}$/);
  assert.match(mid.stages[0].contentHash, /^[0-9a-f]{64}$/);
  assert.ok(mid.stages[0].bytes > 0);
  const text = await cli("status", "toy_a");
  assert.match(text.stdout, /gen\s+done\s+[0-9a-f]{12}\s+[0-9a-f]{12}\s+120\.0 KB/);
  assert.match(text.stdout, /transform\s+partial\s+[0-9a-f]{12}/);
  assert.match(text.stdout, /score\s+missing\s+-\s+-\s+-\s+waits on transform/);
  await Deno.remove(base, { recursive: true });
});

Deno.test("explain names the ingredient that changed since the newest artifact", async () => {
  const { base, cli } = await setup();
  assert.equal((await cli("pipeline", "toy_a")).code, 0);
  const same = await cli("explain", "toy_a", "transform");
  assert.match(same.stdout, /has this key: it is reused/);
  const changed = await cli("explain", "toy_a", "transform", "--scale", "9");
  assert.equal(changed.code, 0);
  assert.match(changed.stdout, /config scale: 2 -> 9/);
  assert.doesNotMatch(
    changed.stdout,
    /config work_ms: .* ->/,
    "unchanged keys are not differences",
  );
  const unknown = await cli("explain", "toy_a", "nope");
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /unknown stage "nope" for toy_a; its stages are: gen, transform, score/,
  );
  await Deno.remove(base, { recursive: true });
});

Deno.test("results prints the newest complete run's score table, and JSON", async () => {
  const { base, cli } = await setup();
  const none = await cli("results", "toy_a");
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no complete run of toy_a/);
  assert.equal((await cli("pipeline", "toy_a")).code, 0);
  assert.equal((await cli("pipeline", "toy_a", "--scale", "3")).code, 0);
  const json = JSON.parse((await cli("results", "toy_a", "--json")).stdout);
  assert.deepEqual(json, {
    "test-clean": { wer: 18, sub: 6, del: 0, ins: 1, words: 100, sentences: 10 },
  });
  const table = await cli("results", "toy_a");
  assert.match(table.stdout, /test-clean\s+18\.00\s+6\s+0\s+1\s+100\s+10/);
  await Deno.remove(base, { recursive: true });
});
