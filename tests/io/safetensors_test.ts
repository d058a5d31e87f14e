/** safetensors: bitwise round trip, the golden weights, and errors that name the file and tensor. */
import {
  formatSafetensors,
  parseSafetensors,
  readSafetensors,
  type SafeTensor,
  SafetensorsError,
  writeSafetensors,
} from "../../src/io/safetensors.ts";

const GOLDEN = new URL("../fixtures/golden/CTC_conmamba_large_d32/", import.meta.url).pathname;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function throwsWith(fn: () => unknown, ...parts: string[]): void {
  try {
    fn();
  } catch (e) {
    assert(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    for (const p of parts) assert(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return;
  }
  throw new Error(`no error (expected one naming ${parts.join(", ")})`);
}

Deno.test("safetensors: write -> read is bitwise, F32/F64/I64/I32 and metadata", async () => {
  const tensors: Record<string, SafeTensor> = {
    "b.weight": {
      dtype: "F32",
      shape: [2, 3],
      data: Float32Array.from([1, -2, 3.5, NaN, -0, 1e-40]),
    },
    "a.ids": { dtype: "I64", shape: [3], data: BigInt64Array.from([1n, -5n, 2n ** 62n]) },
    "c.x": { dtype: "F64", shape: [1], data: Float64Array.from([Math.PI]) },
    "d.empty": { dtype: "I32", shape: [0, 4], data: new Int32Array(0) },
  };
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await writeSafetensors(path, tensors, { format: "pt", who: "test" });
    const bytes = await Deno.readFile(path);
    assert((Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8) === 0, "header padded");
    const f = await readSafetensors(path);
    assert([...f.tensors.keys()].join() === "a.ids,b.weight,c.x,d.empty", "sorted names");
    assert(f.metadata.format === "pt" && f.metadata.who === "test", "metadata");
    for (const [n, t] of Object.entries(tensors)) {
      const r = f.tensors.get(n)!;
      assert(r.dtype === t.dtype && r.shape.join() === t.shape.join(), `${n} dtype/shape`);
      const a = new Uint8Array(t.data.buffer), b = new Uint8Array(r.data.buffer);
      assert(a.length === b.length && a.every((v, i) => v === b[i]), `${n} bits`);
    }
    // Writing what was read gives the same bytes.
    const again = formatSafetensors(f.tensors, f.metadata);
    assert(again.length === bytes.length && again.every((v, i) => v === bytes[i]), "same bytes");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("safetensors: reads the golden weights (100 tensors, 100415 + buffer values)", async () => {
  const f = await readSafetensors(GOLDEN + "weights.safetensors");
  assert(f.tensors.size === 100, `${f.tensors.size} tensors`);
  const w = f.tensors.get("CNN.convblock_0.convs.conv_0.conv.weight")!;
  assert(w.dtype === "F32" && w.shape.join() === "64,1,3,3", "conv0 weight");
  // Re-serialising reproduces the golden data section byte for byte (same sorted packing); the
  // header differs only in where "__metadata__" sits (we write it first, as the HF writer does).
  const bytes = await Deno.readFile(GOLDEN + "weights.safetensors");
  const again = formatSafetensors(f.tensors, f.metadata);
  const body = (b: Uint8Array) =>
    b.subarray(8 + Number(new DataView(b.buffer).getBigUint64(0, true)));
  const [x, y] = [body(bytes), body(again)];
  assert(x.length === y.length && x.every((v, i) => v === y[i]), "golden data bytes");
  assert(parseSafetensors(again).metadata.seed === f.metadata.seed, "metadata kept");
  const io = await readSafetensors(GOLDEN + "io.safetensors");
  const tokens = io.tensors.get("tokens")!;
  assert(tokens.dtype === "I64" && tokens.shape.join() === "2,10", "tokens I64 [2,10]");
});

Deno.test("safetensors: bad files fail with the file and tensor named", () => {
  const good = formatSafetensors({
    w: { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) },
  });
  throwsWith(() => parseSafetensors(good.subarray(0, 5), "x.st"), "x.st", "not a safetensors");
  throwsWith(() => parseSafetensors(good.subarray(0, good.length - 4), "x.st"), "x.st", '"w"');
  const withHeader = (h: unknown, data = 8) => {
    const text = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + text.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    return out;
  };
  throwsWith(
    () =>
      parseSafetensors(
        withHeader({ w: { dtype: "F16", shape: [4], data_offsets: [0, 8] } }),
        "h.st",
      ),
    "h.st",
    '"w"',
    "F16",
  );
  throwsWith(
    () =>
      parseSafetensors(
        withHeader({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }),
        "h.st",
      ),
    '"w"',
    "needs 12",
  );
  throwsWith(
    () =>
      parseSafetensors(withHeader({ w: { dtype: "F32", shape: [2], offsets: [0, 8] } }), "h.st"),
    '"w"',
    "bad header entry",
  );
  throwsWith(
    () =>
      parseSafetensors(
        withHeader({
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
        }),
        "h.st",
      ),
    "overlap or hole",
  );
  throwsWith(
    () => parseSafetensors(withHeader({ __metadata__: { a: 1 } }, 0), "h.st"),
    "__metadata__",
  );
});
