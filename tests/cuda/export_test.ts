/**
 * The CUDA library exports exactly the op table (cm_<op> for every op of ffi/ops.ts) plus the
 * runtime of src/tensor/cuda_backend.ts, nothing more and nothing less. `make test` builds the
 * library first wherever nvcc exists (CI does), so a missing kernel fails here without a GPU;
 * where the library was not built (no nvcc) the test says so and is ignored.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { OPS } from "../../ffi/ops.ts";
import { CUDA_LIBRARY, CUDA_RUNTIME_SYMBOLS, CudaBackend } from "../../src/tensor/cuda_backend.ts";

const path = fileURLToPath(CUDA_LIBRARY);
const built = await Deno.stat(path).then(() => true, () => false);
if (!built) console.warn(`${path} is not built (no nvcc?): the CUDA export test is skipped`);

Deno.test({
  name: "cuda library: exports exactly the op table and the runtime",
  ignore: !built,
  async fn() {
    const out = await new Deno.Command("nm", { args: ["-D", "--defined-only", path] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const exported = new TextDecoder().decode(out.stdout).split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length === 3 && f[1] === "T" && f[2].startsWith("cm_"))
      .map((f) => f[2]).sort();
    const want = [...OPS.map((o) => `cm_${o.name}`), ...CUDA_RUNTIME_SYMBOLS].sort();
    const missing = want.filter((s) => !exported.includes(s));
    const extra = exported.filter((s) => !want.includes(s));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  },
});

Deno.test({
  name: "cuda library: with a GPU the backend opens and copies; without one it says why",
  ignore: !built,
  fn() {
    const why = CudaBackend.unavailableReason();
    if (why === null) {
      // A GPU is present: the backend opens, names its device and moves data both ways.
      const be = CudaBackend.open();
      try {
        assert.match(be.deviceName, /\(sm_\d+\)/);
        const s = be.alloc(3, "param");
        be.upload(s, Float32Array.from([1, -2, 3.5]));
        assert.deepEqual(be.download(s), Float32Array.from([1, -2, 3.5]));
        be.free(s);
      } finally {
        be.close();
      }
      return;
    }
    console.log(`CUDA unavailable here: ${why}`);
    assert.match(why, /GPU|driver|cannot load|initialise/);
  },
});
