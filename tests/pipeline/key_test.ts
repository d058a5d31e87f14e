import assert from "node:assert/strict";
import { join } from "node:path";
import { canonicalJson } from "../../src/pipeline/canonical_json.ts";
import { UndeclaredConfigKeyError } from "../../src/pipeline/errors.ts";
import { sha256File } from "../../src/pipeline/hash.ts";
import { HashCache } from "../../src/pipeline/hash_cache.ts";
import { computeKey, restrictConfig } from "../../src/pipeline/key.ts";
import { defineStage } from "../../src/pipeline/stage.ts";
import { runToy, tempDir, toyConfig } from "./helpers.ts";
import { gen, transform } from "./toy/stages.ts";
import type { ToyConfig } from "./toy/stages.ts";

const noCache = () => HashCache.open(null);

Deno.test("canonical JSON sorts keys at every depth and rejects what JSON cannot carry", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, "x"], c: null } }),
    '{"a":{"c":null,"d":[1,"x"]},"b":1}',
  );
  assert.equal(canonicalJson({ a: -0 }), canonicalJson({ a: 0 }));
  assert.throws(() => canonicalJson({ a: NaN }), /\$\.a is NaN/);
  assert.throws(() => canonicalJson({ a: undefined }), /undefined/);
  assert.throws(() => canonicalJson([1n]), /bigint/);
});

Deno.test("a key is stable: same ingredients, same key, whatever the key order of the config", async () => {
  const c1 = toyConfig();
  const c2 = Object.fromEntries(Object.entries(c1).reverse()) as unknown as ToyConfig;
  const a = await computeKey(gen, c1, {}, await noCache());
  const b = await computeKey(gen, c2, {}, await noCache());
  assert.equal(a.key, b.key);
  assert.match(a.key, /^[0-9a-f]{64}$/);
  // Pinned: a change of this value means every user's cache is invalidated. Do it on purpose only.
  assert.equal(
    canonicalJson(a.ingredients),
    '{"config":{"chunk_bytes":20000,"chunks":6,"comment":"","seed":1,"source_dir":null,"work_ms":0},' +
      '"externals":[],"inputs":{},"stage":"gen","version":1}',
  );
});

Deno.test("every declared ingredient changes the key; undeclared config keys do not", async () => {
  const base = toyConfig();
  const key = async (c: ToyConfig, inputs: Record<string, string> = { gen: "0".repeat(64) }) =>
    (await computeKey(transform, c, inputs, await noCache())).key;
  const k0 = await key(base);
  // declared by transform: scale, work_ms
  assert.notEqual(await key({ ...base, scale: 3 }), k0);
  assert.notEqual(await key({ ...base, work_ms: 7 }), k0);
  // upstream content hash
  assert.notEqual(await key(base, { gen: "1".repeat(64) }), k0);
  // version
  const v2 = { ...transform, version: transform.version + 1 };
  assert.notEqual((await computeKey(v2, base, { gen: "0".repeat(64) }, await noCache())).key, k0);
  // undeclared by transform: seed, chunks, comment, unused, source_dir
  for (
    const over of [{ seed: 99 }, { chunks: 2 }, { comment: "x" }, { unused: "y" }, {
      source_dir: "/",
    }]
  ) {
    assert.equal(await key({ ...base, ...over }), k0, JSON.stringify(over));
  }
});

Deno.test("an external input's content enters the key; its hash is cached by inode and mtime", async () => {
  const dir = await tempDir();
  const src = join(dir, "corpus");
  await Deno.mkdir(join(src, "a"), { recursive: true });
  await Deno.writeTextFile(join(src, "a", "x.txt"), "hello");
  await Deno.writeTextFile(join(src, "y.txt"), "world");
  const cachePath = join(dir, "hash-cache.json");
  const c = toyConfig({ source_dir: src });

  const hc1 = await HashCache.open(cachePath);
  const k1 = await computeKey(gen, c, {}, hc1);
  assert.equal(hc1.filesHashed, 2);
  await hc1.save();

  const hc2 = await HashCache.open(cachePath);
  const k2 = await computeKey(gen, c, {}, hc2);
  assert.equal(hc2.filesHashed, 0, "unchanged files are answered from the cache");
  assert.equal(k2.key, k1.key);

  // Same size, new content, mtime forced back: the inode stays, so only mtime can tell. Set a
  // different mtime explicitly so the test does not depend on the file system's time resolution.
  await Deno.writeTextFile(join(src, "y.txt"), "WORLD");
  await Deno.utime(join(src, "y.txt"), 1_000_000, 1_000_000);
  const hc3 = await HashCache.open(cachePath);
  const k3 = await computeKey(gen, c, {}, hc3);
  assert.equal(hc3.filesHashed, 1);
  assert.notEqual(k3.key, k1.key);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reading an undeclared config key throws, naming the stage and the key", () => {
  const cfg = restrictConfig(toyConfig(), transform);
  assert.equal(cfg.scale, 2);
  assert.throws(
    () => (cfg as ToyConfig).seed,
    (e: unknown) =>
      e instanceof UndeclaredConfigKeyError && e.stage === "transform" && e.key === "seed" &&
      /declare/.test(e.message),
  );
  assert.throws(() => "unused" in cfg, UndeclaredConfigKeyError);
  assert.throws(() => {
    (cfg as { scale: number }).scale = 5;
  }, TypeError);
});

Deno.test("a stage that reads an undeclared key fails the run and publishes nothing", async () => {
  const sneaky = defineStage<ToyConfig, "scale">({
    name: "sneaky",
    version: 1,
    description: "reads a key it did not declare",
    reads: ["scale"],
    after: [],
    run(ctx) {
      void (ctx.config as unknown as ToyConfig).seed;
      return Promise.resolve();
    },
  });
  const cache = await tempDir();
  await assert.rejects(runToy(cache, {}, { stages: [sneaky] }), /read config key "seed"/);
  const published = await Array.fromAsync(Deno.readDir(join(cache, "artifacts")));
  assert.equal(published.length, 0);
  await Deno.remove(cache, { recursive: true });
});

Deno.test("a stage that uses the kernels has their binary's hash in its key", async () => {
  const wasm = new URL("../../build/kernels.wasm", import.meta.url);
  const k = await computeKey({ ...transform, usesKernels: true }, toyConfig(), {
    gen: "0".repeat(64),
  }, await noCache());
  assert.deepEqual(k.ingredients.code, { kernels_wasm: await sha256File(wasm.pathname) });
  const plain = await computeKey(transform, toyConfig(), { gen: "0".repeat(64) }, await noCache());
  assert.equal(plain.ingredients.code, undefined);
  assert.notEqual(k.key, plain.key);
});
