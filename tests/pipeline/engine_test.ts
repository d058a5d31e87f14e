import assert from "node:assert/strict";
import { join } from "node:path";
import { Checkpoints } from "../../src/pipeline/checkpoints.ts";
import { defineStage } from "../../src/pipeline/stage.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import { artifactFiles, runToy, tempDir } from "./helpers.ts";
import { type ToyConfig, toyStages } from "./toy/stages.ts";

const statuses = (r: { stages: { stage: string; status: string }[] }) =>
  Object.fromEntries(r.stages.map((s) => [s.stage, s.status]));

Deno.test("first run builds every stage; a rerun reuses all of them", async () => {
  const cache = await tempDir();
  const r1 = await runToy(cache);
  assert.deepEqual(statuses(r1), { gen: "ran", transform: "ran", score: "ran" });
  assert.equal(r1.complete, true);
  const r2 = await runToy(cache);
  assert.deepEqual(statuses(r2), { gen: "reused", transform: "reused", score: "reused" });
  assert.deepEqual(r2.stages.map((s) => s.contentHash), r1.stages.map((s) => s.contentHash));
  const store = new ArtifactStore(cache);
  for (const s of r1.stages) {
    const m = (await store.get(s.stage, s.key))!;
    assert.equal(m.contentHash, s.contentHash);
    assert.equal(m.host, Deno.hostname());
    assert.equal(m.versions.deno, Deno.version.deno);
    assert.deepEqual(await store.verify(s.stage, s.key), []);
  }
  await Deno.remove(cache, { recursive: true });
});

Deno.test("changing a key reruns that stage and what depends on it, nothing above", async () => {
  const cache = await tempDir();
  await runToy(cache);
  const r = await runToy(cache, { scale: 5 });
  assert.deepEqual(statuses(r), { gen: "reused", transform: "ran", score: "ran" });
  await Deno.remove(cache, { recursive: true });
});

Deno.test("an upstream that reruns but yields identical files does not rerun its dependents", async () => {
  const cache = await tempDir();
  const r1 = await runToy(cache);
  // `comment` is read by gen (so its key changes) but does not change gen's output.
  const r2 = await runToy(cache, { comment: "same output" });
  assert.deepEqual(statuses(r2), { gen: "ran", transform: "reused", score: "reused" });
  assert.notEqual(r2.stages[0].key, r1.stages[0].key);
  assert.equal(r2.stages[0].contentHash, r1.stages[0].contentHash);
  await Deno.remove(cache, { recursive: true });
});

Deno.test("--until stops after the stage; --force rebuilds one stage in place", async () => {
  const cache = await tempDir();
  const r1 = await runToy(cache, {}, { until: "gen" });
  assert.deepEqual(statuses(r1), { gen: "ran" });
  assert.equal(r1.complete, false);
  const r2 = await runToy(cache, {}, { force: ["transform"] });
  assert.deepEqual(statuses(r2), { gen: "reused", transform: "ran", score: "ran" });
  const r3 = await runToy(cache, {}, { force: ["transform"] });
  // Deterministic transform: same content, so score is reused.
  assert.deepEqual(statuses(r3), { gen: "reused", transform: "ran", score: "reused" });
  await assert.rejects(
    runToy(cache, {}, { until: "nope" }),
    /unknown stage "nope".*gen, transform, score/,
  );
  await Deno.remove(cache, { recursive: true });
});

Deno.test("a failing stage publishes nothing; the rerun resumes from its checkpoint", async () => {
  const cache = await tempDir();
  let attempts = 0;
  const seenStarts: number[] = [];
  const flaky = defineStage<ToyConfig, "chunks">({
    name: "gen",
    version: 1,
    description: "fails once half way",
    reads: ["chunks"],
    after: [],
    async run(ctx) {
      attempts++;
      const last = await ctx.checkpoints.latest();
      const start = last ? Number(await last.readText("next")) : 0;
      seenStarts.push(start);
      assert.equal(ctx.resumed, attempts > 1);
      for (let i = start; i < ctx.config.chunks; i++) {
        if (attempts === 1 && i === 3) throw new Error("simulated crash");
        await ctx.writeFile(`c${i}.txt`, `chunk ${i}`);
        await ctx.checkpoints.save(i + 1, { next: String(i + 1) });
      }
    },
  });
  await assert.rejects(
    runToy(cache, {}, { stages: [flaky] }),
    /stage "gen".*failed: simulated crash/,
  );
  assert.deepEqual(await Array.fromAsync(Deno.readDir(join(cache, "artifacts"))), []);
  const r = await runToy(cache, {}, { stages: [flaky] });
  assert.deepEqual(statuses(r), { gen: "resumed" });
  assert.deepEqual(seenStarts, [0, 3]);
  const files = await artifactFiles(cache);
  assert.deepEqual([...files.keys()].map((k) => k.split("/").pop()).sort(), [
    "c0.txt",
    "c1.txt",
    "c2.txt",
    "c3.txt",
    "c4.txt",
    "c5.txt",
  ]);
  // Checkpoints are never part of the artifact, and the partial dir is gone.
  assert.deepEqual(await Array.fromAsync(Deno.readDir(join(cache, "partial", "gen"))), []);
  await Deno.remove(cache, { recursive: true });
});

Deno.test("a damaged newest checkpoint is skipped in favour of the one before", async () => {
  const dir = await tempDir();
  const warnings: string[] = [];
  const ck = new Checkpoints(dir, 3, (m) => warnings.push(m));
  await ck.save(1, { state: "one" });
  await ck.save(2, { state: "two" });
  assert.equal((await ck.latest())!.step, 2);
  const p = join(dir, String(2).padStart(12, "0"), "state");
  await Deno.writeTextFile(p, "TWO");
  const l = await ck.latest();
  assert.equal(l!.step, 1);
  assert.equal(await l!.readText("state"), "one");
  assert.match(warnings[0], /checkpoint 2 is damaged/);
  await ck.save(3, { state: "3" });
  await ck.save(4, { state: "4" });
  await ck.save(5, { state: "5" });
  assert.deepEqual(await ck.steps(), [3, 4, 5], "only the newest `keep` remain");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a stage may not write the engine's manifest.json", async () => {
  const cache = await tempDir();
  const bad = defineStage<ToyConfig, never>({
    name: "bad",
    version: 1,
    description: "",
    reads: [],
    after: [],
    run: (ctx) => ctx.writeFile("manifest.json", "{}"),
  });
  await assert.rejects(runToy(cache, {}, { stages: [bad] }), /manifest\.json.*engine's/);
  await Deno.remove(cache, { recursive: true });
});

Deno.test("stage graphs are checked: unknown upstream, duplicate names", async () => {
  const cache = await tempDir();
  await assert.rejects(
    runToy(cache, {}, { stages: [toyStages[1]] }),
    /unknown or later stage "gen"/,
  );
  await assert.rejects(runToy(cache, {}, { stages: [toyStages[0], toyStages[0]] }), /"gen" twice/);
  await Deno.remove(cache, { recursive: true });
});
