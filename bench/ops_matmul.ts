/**
 * GEMM throughput of the Wasm matmul kernel (1 thread and all threads) against the system
 * OpenBLAS sgemm (one thread, through Deno FFI) in the same run, on the matmul shapes of the
 * encoder FFNs: rows = B*T' frames, weights stored (out, in) as nn.Linear keeps them.
 *
 *   deno run -A bench/ops_matmul.ts [--json]      (needs build/kernels.wasm: `make wasm`)
 *
 * OpenBLAS comes from Debian's libopenblas0 (`apt-get install -y libopenblas0`); without it the
 * OpenBLAS column reads "n/a".
 */
import { bestSeconds } from "./timing.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { matmul } from "../src/tensor/ops.ts";

const SHAPES = [
  { label: "conmamba_small FFN1", m: 1024, n: 1024, k: 144 },
  { label: "conmamba_small FFN2", m: 1024, n: 144, k: 1024 },
  { label: "conmamba_large FFN1", m: 1024, n: 2048, k: 512 },
  { label: "conmamba_large FFN2", m: 1024, n: 512, k: 2048 },
  { label: "conmamba_large conv pw1 (GLU)", m: 1024, n: 1024, k: 512 },
];
const REPEATS = 5;

const best = (fn: () => void) => bestSeconds(fn, REPEATS);

function ours(be: WasmBackend, m: number, n: number, k: number): number {
  const x = Tensor.from(be, [m, k], Float32Array.from({ length: m * k }, (_, i) => (i % 7) - 3));
  const w = Tensor.from(be, [n, k], Float32Array.from({ length: n * k }, (_, i) => (i % 5) - 2));
  const out = Tensor.empty(be, [m, n]);
  const s = best(() => matmul(x, w, { transB: true, out }));
  be.resetStep();
  return (2 * m * n * k) / s / 1e9;
}

const BLAS_PATHS = ["/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "libopenblas.so.0"];

function openBlas() {
  for (const path of BLAS_PATHS) {
    try {
      return Deno.dlopen(path, {
        cblas_sgemm: {
          parameters: [
            "i32",
            "i32",
            "i32",
            "i32",
            "i32",
            "i32",
            "f32",
            "buffer",
            "i32",
            "buffer",
            "i32",
            "f32",
            "buffer",
            "i32",
          ],
          result: "void",
        },
        openblas_set_num_threads: { parameters: ["i32"], result: "void" },
      });
    } catch {
      // try the next path
    }
  }
  return null;
}

function blasGflops(
  lib: NonNullable<ReturnType<typeof openBlas>>,
  m: number,
  n: number,
  k: number,
) {
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 7) - 3);
  const b = Float32Array.from({ length: n * k }, (_, i) => (i % 5) - 2);
  const c = new Float32Array(m * n);
  // Row-major, C = A B^T: CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112.
  const s = best(() => lib.symbols.cblas_sgemm(101, 111, 112, m, n, k, 1, a, k, b, k, 0, c, n));
  return (2 * m * n * k) / s / 1e9;
}

export interface GemmRow {
  shape: string;
  label: string;
  ours_gflops_1t: number;
  ours_gflops_all: number;
  openblas_gflops_1t: number | null;
}

/** Every shape: ours with 1 and all threads, OpenBLAS with 1 thread, same process. */
export async function gemmBench(): Promise<{ threads: number; rows: GemmRow[] }> {
  const threads = navigator.hardwareConcurrency;
  const one = await WasmBackend.create({ threads: 1 });
  const all = await WasmBackend.create({ threads });
  const blas = openBlas();
  blas?.symbols.openblas_set_num_threads(1);
  try {
    const rows = SHAPES.map(({ label, m, n, k }) => ({
      shape: `${m}x${n}x${k}`,
      label,
      ours_gflops_1t: ours(one, m, n, k),
      ours_gflops_all: ours(all, m, n, k),
      openblas_gflops_1t: blas ? blasGflops(blas, m, n, k) : null,
    }));
    return { threads, rows };
  } finally {
    one.close();
    all.close();
    blas?.close();
  }
}

/** The rows as a markdown table (ratios against OpenBLAS measured in the same run). */
export function gemmTable({ threads, rows }: { threads: number; rows: GemmRow[] }): string {
  const f = (x: number | null) => (x === null ? "n/a" : x.toFixed(1));
  const out = [
    `GEMM C(M,N) = A(M,K) W(N,K)^T, GFLOP/s, best of ${REPEATS}; all = ${threads} threads`,
    "",
    "| M x N x K | layer | ours 1t | ours all | OpenBLAS 1t | ours / OpenBLAS (1t) |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const ratio = r.openblas_gflops_1t
      ? (r.ours_gflops_1t / r.openblas_gflops_1t).toFixed(2)
      : "n/a (apt-get install libopenblas0)";
    out.push(
      `| ${r.shape} | ${r.label} | ${f(r.ours_gflops_1t)} | ${f(r.ours_gflops_all)} | ` +
        `${f(r.openblas_gflops_1t)} | ${ratio} |`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const result = await gemmBench();
  console.log(gemmTable(result));
  if (Deno.args.includes("--json")) console.log(JSON.stringify(result));
}
