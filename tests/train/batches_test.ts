/** Training batches from a small hand-made feature store. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FeatureStore } from "../../src/data/feature_store.ts";
import { makeBatch, speedFor, trainEpoch, type Utterance } from "../../src/train/batches.ts";

const F = 4;
/** Utterance i at speed s: frames 10 + i (+1 for 95, +2 for 105), value = i * 1000 + s + t. */
async function fakeStore(
  n: number,
): Promise<{ dir: string; store: FeatureStore; utts: Utterance[] }> {
  const dir = await Deno.makeTempDir({ prefix: "cm-store-" });
  const speeds: Record<string, { file: string; ids: string[]; frames: number[] }[]> = {};
  for (const s of [95, 100, 105]) {
    const frames = Array.from({ length: n }, (_, i) => 10 + i + (s === 95 ? 1 : s === 105 ? 2 : 0));
    const data: number[] = [];
    frames.forEach((T, i) => {
      for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) data.push(i * 1000 + s + t);
    });
    const file = `shards/train/${s}/0000.f32`;
    await Deno.mkdir(join(dir, "shards/train", String(s)), { recursive: true });
    await Deno.writeFile(join(dir, file), new Uint8Array(Float32Array.from(data).buffer));
    speeds[String(s)] = [{ file, ids: frames.map((_, i) => `u${i}`), frames }];
  }
  await Deno.mkdir(join(dir, "index"));
  await Deno.writeTextFile(
    join(dir, "index/train.json"),
    JSON.stringify({ split: "train", n_mels: F, speeds }),
  );
  const store = await FeatureStore.open(dir, ["train"]);
  const utts = Array.from({ length: n }, (_, i) => ({
    id: `u${i}`,
    split: "train",
    duration: 0.1 + i * 0.01,
    tokens: Array.from({ length: 1 + (i % 4) }, (_, k) => 3 + k),
  }));
  return { dir, store, utts };
}

Deno.test("a batch: features zero-padded, true frames, relative lengths, bos/eos targets (§8.6)", async () => {
  const { dir, store, utts } = await fakeStore(6);
  const b = await makeBatch(store, [utts[1], utts[4]], [100, 105], 1, 2);
  assert.equal(b.T, 16); // utt 4 at speed 105: 10 + 4 + 2
  assert.deepEqual(b.frames, [11, 16]);
  assert.deepEqual(b.relLens, [11 / 16, 1]);
  assert.equal(b.feats[(0 * 16 + 10) * F], 1000 + 100 + 10); // last real frame of utt 1
  assert.equal(b.feats[(0 * 16 + 11) * F], 0); // padding
  assert.equal(b.feats[(1 * 16 + 0) * F], 4000 + 105);
  // tokens: utt 1 -> [3, 4], utt 4 -> [3]; U = 2
  assert.deepEqual([...b.tokens], [3, 4, 3, 0]);
  assert.deepEqual([...b.tokensBos], [1, 3, 4, 1, 3, 0]);
  assert.deepEqual([...b.tokensEos], [3, 4, 2, 3, 2, 0]);
  assert.deepEqual(b.tokenLens, [2, 1]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an epoch covers every utterance once; speed copies are drawn per utterance and epoch", async () => {
  const { dir, store, utts } = await fakeStore(30);
  const sampler = {
    maxBatchLength: 1.5,
    numBuckets: 10,
    maxBatchEx: 8,
    shuffle: true,
    batchOrdering: "random" as const,
    reseedEachEpoch: false,
  };
  const o = { epoch: 1, seed: 7, speeds: [95, 100, 105], bos: 1, eos: 2 };
  const seen: string[] = [];
  const speedsSeen = new Set<number>();
  for await (const b of trainEpoch(store, utts, sampler, o)) {
    seen.push(...b.ids);
    b.speeds.forEach((s, i) => {
      speedsSeen.add(s);
      assert.equal(b.feats[i * b.T * F] % 1000, s); // the copy read is the one drawn
    });
  }
  assert.deepEqual(seen.sort(), utts.map((u) => u.id).sort());
  assert.deepEqual([...speedsSeen].sort(), [100, 105, 95]);
  // Repeatable, and a new epoch draws anew.
  const draw = (e: number) => utts.map((_, i) => speedFor([95, 100, 105], 7, e, i));
  assert.deepEqual(draw(1), draw(1));
  assert.notDeepEqual(draw(1), draw(2));
  const counts = [95, 100, 105].map((s) =>
    draw(3).concat(draw(4), draw(5)).filter((x) => x === s).length
  );
  assert.ok(counts.every((c) => c > 15), `speed counts ${counts}`);
  await Deno.remove(dir, { recursive: true });
});
