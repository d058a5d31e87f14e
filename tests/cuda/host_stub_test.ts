/**
 * CudaBackend's argument packing, checked without a GPU: the backend runs on the host stub of the
 * library (bench/host_bench.ts, compiled with clang), whose ops record the parameter block and
 * pointers they receive. Each call must deliver the struct of ffi/ops.ts field by field (i32 or
 * f32, absent fields 0) and every pointer as storage address + 4 offset (0 for null), including
 * when the backend reuses one block per op across calls.
 */
import { buildHostStub } from "../../bench/host_bench.ts";
import { opByName, OPS } from "../../ffi/ops.ts";
import type { BufferArg } from "../../src/tensor/backend.ts";
import { CudaBackend } from "../../src/tensor/cuda_backend.ts";

const stub = buildHostStub();

function lastCall(lib: Deno.DynamicLibrary<{ cm_stub_last: Deno.ForeignFunction }>) {
  const out = new Uint8Array(12 + 256 + 8 * 32);
  const n = lib.symbols.cm_stub_last(out) as number;
  const v = new DataView(out.buffer, 0, n);
  const [op, bytes, count] = [v.getInt32(0, true), v.getInt32(4, true), v.getInt32(8, true)];
  return {
    op: OPS[op]?.name,
    block: new DataView(out.buffer, 12, bytes),
    ptrs: Array.from({ length: count }, (_, i) => v.getBigUint64(12 + bytes + 8 * i, true)),
  };
}

Deno.test("CudaBackend packs every op's parameters and pointers as ffi/ops.ts says", () => {
  const be = CudaBackend.open({ library: stub });
  const lib = Deno.dlopen(stub, {
    cm_stub_last: { parameters: ["buffer"], result: "i32" },
  });
  try {
    const a = be.alloc(1000, "step"), b = be.alloc(300, "param");
    const cases: [string, Record<string, number>, BufferArg[]][] = [
      ["adam_step", {
        n: 7,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-9,
        decoupled: 1,
        decay_factor: 1 - 8e-4 * 0.01,
        step_size: 1 / 3,
        bc2_sqrt: Math.sqrt(0.02),
        grad_scale: 0.75,
      }, [{ storage: a }, { storage: b, offset: 5 }, { storage: a, offset: 999 }, {
        storage: b,
      }]],
      // The same op again: nothing of the first call may remain (weight_decay absent: 0).
      ["adam_step", { n: 123456, beta1: -2.5, decoupled: 0 }, [{ storage: b }, null, null, {
        storage: a,
        offset: 1,
      }]],
      ["matmul", {
        batch: 2,
        m: 3,
        n: 4,
        k: 5,
        lda: 5,
        ldb: 4,
        ldc: 4,
        stride_a: 15,
        stride_b: 0,
        stride_c: 12,
        trans_b: 1,
        accumulate: 1,
        epilogue: 1,
        p: 0.1,
        seed: 7,
        stream: -3,
        row0: 40,
        y_bf16: 1,
      }, [{ storage: a }, { storage: b, offset: 17 }, null, { storage: a, offset: 500 }, {
        storage: b,
        offset: 250,
      }]],
      ["layernorm_forward", { rows: 2, cols: 144, ld: 144, eps: 1e-5 }, [
        { storage: a },
        { storage: b },
        { storage: b, offset: 144 },
        { storage: a, offset: 288 },
        { storage: a, offset: 600 },
        { storage: a, offset: 602 },
      ]],
    ];
    for (const [name, params, args] of cases) {
      be.run(name, params, args);
      const got = lastCall(lib), spec = opByName(name);
      if (got.op !== name) throw new Error(`${name}: the stub saw ${got.op}`);
      spec.params.fields.forEach(([field, type], i) => {
        const want = params[field] ?? 0;
        const have = type === "f32"
          ? got.block.getFloat32(4 * i, true)
          : got.block.getInt32(4 * i, true);
        const expect = type === "f32" ? Math.fround(want) : want;
        if (!Object.is(have, expect)) {
          throw new Error(`${name}.${field} (${type}): ${have}, want ${expect}`);
        }
      });
      args.forEach((arg, i) => {
        const want = arg === null ? 0n : BigInt(arg.storage.ptr + 4 * (arg.offset ?? 0));
        if (got.ptrs[i] !== want) throw new Error(`${name} pointer ${i}: ${got.ptrs[i]}, ${want}`);
      });
    }
    let msg = "";
    try {
      be.run("adam_step", { n: 1 }, [{ storage: a }]);
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.includes("adam_step takes 4 pointers, got 1")) throw new Error(`arity: "${msg}"`);
  } finally {
    lib.close();
    be.close();
  }
});
