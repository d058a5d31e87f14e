import assert from "node:assert/strict";
import { join } from "node:path";
import { KeyLock } from "../../src/pipeline/lock.ts";
import { runToyCli, spawnToyCli, tempDir, toyExperiments, waitForPath } from "./helpers.ts";

function stageStatus(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/^\s+(\w+)\s+(ran|reused|resumed)\s/gm)) out[m[1]] = m[2];
  return out;
}

async function partialDirOf(cache: string, stage: string): Promise<string> {
  const dir = join(cache, "partial", stage);
  await waitForPath(dir);
  for (;;) {
    const keys = await Array.fromAsync(Deno.readDir(dir));
    if (keys.length > 0) return join(dir, keys[0].name);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("two concurrent runs of one experiment: each stage is built once, the other waits", async () => {
  const base = await tempDir();
  const env = await toyExperiments(base, { toy_a: { work_ms: 80, chunks: 6 } });
  const cache = join(base, "cache");
  const first = spawnToyCli(["pipeline", "toy_a", "--cache", cache], env);
  // Start the second once the first holds gen's lock (its partial dir exists only then).
  await partialDirOf(cache, "gen");
  const second = await runToyCli(["pipeline", "toy_a", "--cache", cache], env);
  const firstOut = await first.output();
  const dec = new TextDecoder();
  assert.equal(firstOut.code, 0, dec.decode(firstOut.stderr));
  assert.equal(second.code, 0, second.stderr);
  const a = stageStatus(dec.decode(firstOut.stdout)), b = stageStatus(second.stdout);
  // gen: the first built it and the second waited for it. Later stages may be built by either
  // run (the second can overtake after waiting), but each by exactly one.
  assert.equal(a.gen, "ran");
  assert.equal(b.gen, "reused");
  for (const stage of ["transform", "score"]) {
    assert.deepEqual([a[stage], b[stage]].sort(), ["ran", "reused"], stage);
  }
  assert.match(
    second.stderr,
    /gen: key [0-9a-f]{12} is being built by pid \d+ on .*; waiting for it/,
  );
  await Deno.remove(base, { recursive: true });
});

Deno.test("a lock left by a killed run is broken with a warning naming the dead pid", async () => {
  const base = await tempDir();
  const env = await toyExperiments(base, { toy_a: { work_ms: 100, chunks: 6 } });
  const cache = join(base, "cache");
  const victim = spawnToyCli(["pipeline", "toy_a", "--cache", cache], env);
  await waitForPath(join(await partialDirOf(cache, "gen"), "checkpoints"));
  victim.kill("SIGKILL");
  await victim.status;
  await victim.stdout.cancel();
  await victim.stderr.cancel();
  const rerun = await runToyCli(["pipeline", "toy_a", "--cache", cache], env);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(
    rerun.stderr,
    new RegExp(`warning: gen: breaking the lock of pid ${victim.pid} on .*that process died`),
  );
  assert.equal(stageStatus(rerun.stdout).gen, "resumed");
  await Deno.remove(base, { recursive: true });
});

Deno.test("KeyLock: held is visible to others; release clears the owner record", async () => {
  const dir = await tempDir();
  const path = join(dir, "x.lock");
  assert.equal(await KeyLock.isHeld(path), false);
  const lock = await KeyLock.acquire(path);
  assert.equal(await KeyLock.isHeld(path), true);
  const owner = JSON.parse(await Deno.readTextFile(path));
  assert.equal(owner.pid, Deno.pid);
  await lock.release();
  assert.equal(await KeyLock.isHeld(path), false);
  assert.equal(await Deno.readTextFile(path), "");
  let stale = false;
  const again = await KeyLock.acquire(path, { onStale: () => (stale = true) });
  assert.equal(stale, false, "a cleanly released lock is not reported as stale");
  await again.release();
  await Deno.remove(dir, { recursive: true });
});
