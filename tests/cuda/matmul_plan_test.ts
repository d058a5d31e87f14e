/**
 * The CUDA matmul's index plans, checked on the host: tests/cuda/host/matmul_plan_check.cc
 * includes cuda/matmul.cuh (plain C++, no CUDA types) and emulates, with a scalar reference of
 * the documented semantics, the split-K chunks summed in order and the cuBLAS column-major
 * mapping, on random operands with padded strides, every transpose, batches, shared operands,
 * accumulate and bias. A wrong stride or transpose there would only show on a GPU otherwise.
 * Built with clang (which `make test` installs); ignored, saying so, where there is none.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const source = fileURLToPath(new URL("./host/matmul_plan_check.cc", import.meta.url));
const clang = await new Deno.Command("clang", { args: ["--version"], stdout: "null" }).output()
  .then((o) => o.success, () => false);
if (!clang) console.warn("clang not found: the CUDA matmul plan check is skipped");

Deno.test({
  name: "cuda matmul plans: split-K chunks and the cuBLAS mapping reproduce the product (host)",
  ignore: !clang,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "matmul_plan_" });
    try {
      const exe = `${dir}/check`;
      const build = await new Deno.Command("clang", {
        args: [
          "-x",
          "c++",
          "-std=c++17",
          "-O2",
          "-Wall",
          "-Wextra",
          "-Werror",
          source,
          "-lm",
          "-o",
          exe,
        ],
      }).output();
      assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
      const run = await new Deno.Command(exe).output();
      const out = new TextDecoder().decode(run.stdout);
      assert.equal(run.code, 0, out);
      assert.match(out, /^ok$/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
