/**
 * GPU benchmark on the CUDA backend (build/libconmamba_cuda.so), run by scripts/gpu-check.sh:
 *
 *   1. training-step throughput for conmamba_small and conmamba_large: one AsrTrainer step
 *      (normalisation, SpecAugment, forward with dropout, the joint loss, backward, clipping,
 *      Adam) on a synthetic batch (bench/asr_batch.ts), timed to the end of the last kernel:
 *      step time, seconds of audio per second, and model FLOP utilisation: the matrix-product
 *      FLOPs the step actually ran (2 m n k per matmul call, forward and backward, counted at
 *      the backend) / step time / the card's dense bf16 tensor-core peak;
 *   2. the selective scan's bandwidth (bytes it must read and write / time) against a
 *      device-to-device copy (cm_cuda_copy) of the same number of bytes;
 *   3. our matmul against torch.matmul (fp32 with TF32 off, TF32, bf16) on the models' shapes,
 *      when `python3 -c "import torch"` works and sees the GPU.
 *
 *   deno run -A bench/gpu_bench.ts [--out results.md] [--json results.json] [--budget-s 200]
 *                                  [--only train,scan,matmul] [--dry-run]
 *
 * --dry-run runs every section on the Wasm backend at a tenth of the sizes (tiny experiment for
 * the training step): it checks this script's code paths and tables on a machine without a GPU;
 * its numbers mean nothing.
 *
 * Peaks (dense, i.e. without 2:4 sparsity; NVIDIA's datasheets quote the sparse figure, twice
 * these): H100 SXM5 bf16 989.4 TFLOPS, fp32 (non-tensor) 66.9 TFLOPS, HBM3 3.35 TB/s
 * (NVIDIA H100 Tensor Core GPU datasheet: "BF16 Tensor Core 1,979 teraFLOPS*", * with
 * sparsity); H200 SXM the same compute (H200 datasheet: BF16 1,979 TFLOPS with sparsity), HBM3e
 * 4.8 TB/s; H100 PCIe 756 / 51.2; H100 NVL and H200 NVL 835 / 60; A100 312 / 19.5.
 * Exits 2 when CUDA is unavailable, saying why.
 */
import { audioSeconds, experimentBatch, stepSettings } from "./asr_batch.ts";
import { InputNormalization } from "../src/audio/input_normalization.ts";
import { loadExperiment } from "../src/config/load.ts";
import { initialize } from "../src/nn/init.ts";
import { buildModel } from "../src/nn/model_config.ts";
import type { Backend, Storage } from "../src/tensor/backend.ts";
import { ObservedBackend } from "../src/tensor/observed_backend.ts";
import { CUDA_LIBRARY, CudaBackend } from "../src/tensor/cuda_backend.ts";
import { selectiveScan, selectiveScanBackward } from "../src/tensor/mamba_ops.ts";
import { matmul } from "../src/tensor/ops.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { AsrTrainer } from "../src/train/step.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";

// ---- options -------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const OUT = option("--out");
const JSON_OUT = option("--json");
const BUDGET_S = Number(option("--budget-s") ?? "240");
const ONLY = new Set((option("--only") ?? "train,scan,matmul").split(","));
const DRY = Deno.args.includes("--dry-run");
const T0 = performance.now();
const left = () => BUDGET_S - (performance.now() - T0) / 1000;

// ---- the card ------------------------------------------------------------------------------

interface Peak {
  card: string;
  bf16: number; // dense TFLOPS
  fp32: number; // non-tensor TFLOPS
  hbm: number; // TB/s
}

/** The card's peaks from its name (see the header for the sources). */
export function peakOf(name: string): Peak {
  const n = name.toUpperCase();
  const table: [RegExp, Peak][] = [
    [/H200 NVL/, { card: "H200 NVL", bf16: 835, fp32: 60, hbm: 4.8 }],
    [/H200/, { card: "H200 SXM", bf16: 989.4, fp32: 66.9, hbm: 4.8 }],
    [/H100 NVL/, { card: "H100 NVL", bf16: 835, fp32: 60, hbm: 3.9 }],
    [/H100 PCIE/, { card: "H100 PCIe", bf16: 756, fp32: 51.2, hbm: 2.0 }],
    [/H100/, { card: "H100 SXM", bf16: 989.4, fp32: 66.9, hbm: 3.35 }],
    [/A100/, { card: "A100", bf16: 312, fp32: 19.5, hbm: 2.0 }],
  ];
  for (const [re, p] of table) if (re.test(n)) return p;
  return { card: `unknown (${name}): H100 SXM peaks assumed`, bf16: 989.4, fp32: 66.9, hbm: 3.35 };
}

// ---- the device ---------------------------------------------------------------------------

/** What the benchmark needs beyond the Backend interface. */
interface Device {
  be: Backend;
  name: string;
  /** Waits for every queued op. */
  sync(): void;
  peakBytes(): number;
  resetPeak(): void;
  /** Device-to-device copy of `bytes` (asynchronous on the GPU). */
  copy(dst: Storage, src: Storage, bytes: number): void;
  close(): void;
}

/** Runtime entry points CudaBackend does not expose; a second dlopen of the library returns the
 * same loaded image, so they act on the backend's stream and allocator. */
const EXTRA = {
  cm_cuda_copy: { parameters: ["u64", "u64", "u64"], result: "i32" },
  cm_cuda_reset_peak: { parameters: [], result: "void" },
} as const;

function cudaDevice(): Device {
  const be = CudaBackend.open();
  const lib = Deno.dlopen(CUDA_LIBRARY, EXTRA);
  return {
    be,
    name: be.deviceName,
    sync: () => be.synchronize(),
    peakBytes: () => be.memoryStats().peakBytes,
    resetPeak: () => lib.symbols.cm_cuda_reset_peak(),
    copy: (dst, src, bytes) => {
      lib.symbols.cm_cuda_copy(BigInt(dst.ptr), BigInt(src.ptr), BigInt(bytes));
    },
    close: () => {
      lib.close();
      be.close();
    },
  };
}

async function wasmDevice(): Promise<Device> {
  const be = await WasmBackend.create();
  return {
    be,
    name: `Wasm, ${be.threads} threads (dry run: numbers mean nothing)`,
    sync: () => {},
    peakBytes: () => NaN,
    resetPeak: () => {},
    copy: (dst, src, bytes) => {
      new Uint8Array(be.memory.buffer).copyWithin(dst.ptr, src.ptr, src.ptr + bytes);
    },
    close: () => be.close(),
  };
}

/** Sizes are divided by this in a dry run. */
const SHRINK = DRY ? 10 : 1;

// ---- a backend that counts matrix-product FLOPs ----------------------------------------------

/** Delegates to a backend and sums the FLOPs of its matrix products. */
class Counting extends ObservedBackend {
  flops = 0;
  constructor(inner: Backend) {
    super(inner, (name, p) => {
      if (name === "matmul") this.flops += 2 * p.batch * p.m * p.n * p.k;
    });
  }
}

// ---- 1. training step ----------------------------------------------------------------------

/** Batches: 10 s utterances (1000 frames); the large model gets half the utterances. */
const TRAIN_SHAPES: Record<string, { B: number; T: number }> = DRY
  ? { tiny: { B: 2, T: 200 } }
  : { conmamba_small: { B: 16, T: 1000 }, conmamba_large: { B: 8, T: 1000 } };

interface TrainRow {
  experiment: string;
  B: number;
  T: number;
  audioS: number;
  stepMs: number; // best timed step
  meanMs: number;
  tflopPerStep: number;
  mfu: number; // vs the bf16 peak
  fp32Util: number; // vs the fp32 non-tensor peak
  peakGiB: number;
  loss: number;
  error?: string;
}

function trainStep(dev: Device, name: string, peak: Peak, timed: number): TrainRow {
  const be = new Counting(dev.be);
  const shape = TRAIN_SHAPES[name];
  const row = {
    experiment: name,
    ...shape,
    audioS: audioSeconds(shape),
    stepMs: NaN,
    meanMs: NaN,
    tflopPerStep: NaN,
    mfu: NaN,
    fp32Util: NaN,
    peakGiB: NaN,
    loss: NaN,
  };
  const c = loadExperiment(name, {});
  const model = buildModel(be, c);
  initialize(model, c.seed!);
  const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
  try {
    let seed = 1;
    tr.step(experimentBatch(c, shape.B, shape.T, seed++), 1); // warm-up: allocator, caches
    dev.sync();
    dev.resetPeak();
    const times: number[] = [];
    for (let i = 0; i < timed && (i === 0 || left() > 30); i++) {
      const batch = experimentBatch(c, shape.B, shape.T, seed++); // step() normalises in place
      be.flops = 0;
      const t0 = performance.now();
      const log = tr.step(batch, 1);
      dev.sync();
      times.push(performance.now() - t0);
      row.loss = log.loss;
      row.tflopPerStep = be.flops / 1e12;
    }
    row.stepMs = Math.min(...times);
    row.meanMs = times.reduce((a, b) => a + b, 0) / times.length;
    const tflops = row.tflopPerStep / (row.stepMs / 1000);
    row.mfu = tflops / peak.bf16;
    row.fp32Util = tflops / peak.fp32;
    row.peakGiB = dev.peakBytes() / 2 ** 30;
    return row;
  } catch (e) {
    return { ...row, error: (e as Error).message.split("\n")[0] };
  } finally {
    tr.free();
    model.free();
    be.resetStep();
  }
}

// ---- 2. selective scan vs copy -------------------------------------------------------------

interface ScanRow {
  what: string;
  ms: number;
  gbps: number;
  copyGbps: number;
  ratio: number;
}

/** GB/s of `fn` moving `bytes` per call: 3 warm-up calls, then the mean of `reps` calls. */
function timeIt(dev: Device, fn: () => void, reps: number): number {
  for (let i = 0; i < 3; i++) fn();
  dev.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  dev.sync();
  return (performance.now() - t0) / reps;
}

function scanBench(dev: Device): ScanRow[] {
  const be = dev.be, rows: ScanRow[] = [];
  const randn = (n: number, std = 1) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = std * (Math.random() + Math.random() + Math.random() - 1.5);
    return a;
  };
  for (
    const [label, B0, T, Di] of [
      ["conmamba_small direction", 16, 250, 288],
      ["conmamba_large direction", 8, 250, 1024],
    ] as const
  ) {
    const B = Math.ceil(B0 / SHRINK),
      shape = `${label} (${B}, ${T}, ${Di})`,
      Ns = 16,
      bt = B * T,
      nchunks = Math.ceil(T / 64);
    const t = (shape: number[], data: Float32Array) => Tensor.from(be, shape, data, "param");
    const q = {
      u: t([B, T, Di], randn(bt * Di)),
      delta: t([B, T, Di], randn(bt * Di, 0.5)),
      A: t([Di, Ns], Float32Array.from(randn(Di * Ns), (_, i) => -(1 + (i % Ns)))),
      B: t([B, T, Ns], randn(bt * Ns)),
      C: t([B, T, Ns], randn(bt * Ns)),
      D: t([Di], randn(Di)),
      z: t([B, T, Di], randn(bt * Di)),
      deltaBias: t([Di], randn(Di, 0.1).map((v) => v - 4)),
      deltaSoftplus: true,
    };
    const dout = t([B, T, Di], randn(bt * Di));
    const fwdBytes = 4 * (4 * bt * Di + 2 * bt * Ns + B * nchunks * Di * Ns + Di * Ns + 2 * Di);
    const bwdBytes = 4 *
      (7 * bt * Di + 4 * bt * Ns + B * nchunks * Di * Ns + Di * Ns + B * Di * Ns + 2 * B * Di +
        2 * Di);
    const copyOf = (bytes: number) => {
      const n = Math.ceil(bytes / 8); // src and dst together move `bytes`
      const src = be.alloc(n, "param"), dst = be.alloc(n, "param");
      const ms = timeIt(dev, () => dev.copy(dst, src, 4 * n), 20);
      be.free(src);
      be.free(dst);
      return (8 * n) / (ms / 1000) / 1e9;
    };
    const fwdMs = timeIt(dev, () => {
      selectiveScan(q);
      be.resetStep();
    }, 10);
    // The backward's inputs (the saved states) must outlive its calls: no resetStep in between
    // (8 calls' gradients, a few hundred MB at most, go back at the end).
    const saved = selectiveScan(q);
    const bwdMs = timeIt(dev, () => void selectiveScanBackward(dout, q, saved), 5);
    be.resetStep();
    for (
      const [what, ms, bytes] of [
        [`forward, ${shape}`, fwdMs, fwdBytes],
        [`backward (+ 3 sum_rows), ${shape}`, bwdMs, bwdBytes],
      ] as const
    ) {
      const gbps = bytes / (ms / 1000) / 1e9, copyGbps = copyOf(bytes);
      rows.push({ what, ms, gbps, copyGbps, ratio: gbps / copyGbps });
    }
    for (const x of [q.u, q.delta, q.A, q.B, q.C, q.D, q.z, q.deltaBias, dout]) x.free();
    be.resetStep();
  }
  return rows;
}

// ---- 3. matmul vs torch --------------------------------------------------------------------

/** (M, K, N) of C = X W^T, W (N, K) as nn.Linear keeps it: the models' products at B T'. */
const MATMUL_SHAPES: [string, number, number, number][] = [
  ["small FFN w1 (16x250 tokens)", 4000, 144, 1024],
  ["small FFN w2", 4000, 1024, 144],
  ["small Mamba in_proj", 4000, 144, 576],
  ["small Mamba out_proj", 4000, 288, 144],
  ["small CTC head", 4000, 144, 5000],
  ["small front-end conv 2 (im2col)", 80000, 576, 32],
  ["large FFN w1 (8x250 tokens)", 2000, 512, 2048],
  ["large FFN w2", 2000, 2048, 512],
  ["large Mamba in_proj", 2000, 512, 2048],
  ["large Mamba out_proj", 2000, 1024, 512],
  ["large CTC head", 2000, 512, 5000],
  ["large decoder seq_lin (8x26 tokens)", 208, 512, 5000],
];

interface MatmulRow {
  layer: string;
  shape: string;
  oursTflops: number;
  torchFp32?: number;
  torchTf32?: number;
  torchBf16?: number;
}

function matmulBench(dev: Device): MatmulRow[] {
  const be = dev.be, rows: MatmulRow[] = [];
  for (const [layer, M0, K, N] of MATMUL_SHAPES) {
    const M = Math.ceil(M0 / SHRINK);
    const fill = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
    const x = Tensor.from(be, [M, K], fill(M * K), "param");
    const w = Tensor.from(be, [N, K], fill(N * K), "param");
    const out = Tensor.empty(be, [M, N], "param");
    const ms = timeIt(dev, () => void matmul(x, w, { transB: true, out }), DRY ? 2 : 10);
    rows.push({ layer, shape: `${M}x${K}x${N}`, oursTflops: (2 * M * N * K) / (ms / 1000) / 1e12 });
    for (const t of [x, w, out]) t.free();
  }
  return rows;
}

const TORCH = `
import json, sys, torch
assert torch.cuda.is_available()
out = []
for m, k, n in json.loads(sys.argv[1]):
    x = torch.randn(m, k, device="cuda"); w = torch.randn(n, k, device="cuda")
    r = {}
    for name, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = x.to(dt), w.to(dt)
        for _ in range(3): torch.matmul(a, b.t())
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(20): torch.matmul(a, b.t())
        e.record(); torch.cuda.synchronize()
        r[name] = 2 * m * n * k / (s.elapsed_time(e) / 20 / 1000) / 1e12
    out.append(r)
print(json.dumps({"torch": torch.__version__, "rows": out}))
`;

async function torchBench(rows: MatmulRow[]): Promise<string> {
  if (DRY) return "torch: not measured (dry run)";
  const shapes = MATMUL_SHAPES.map(([, m, k, n]) => [m, k, n]);
  try {
    const r = await new Deno.Command("python3", {
      args: ["-c", TORCH, JSON.stringify(shapes)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.code !== 0) {
      const err = new TextDecoder().decode(r.stderr).trim().split("\n").pop();
      return `torch: not measured (${err})`;
    }
    const res = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
    res.rows.forEach((t: { fp32: number; tf32: number; bf16: number }, i: number) => {
      rows[i].torchFp32 = t.fp32;
      rows[i].torchTf32 = t.tf32;
      rows[i].torchBf16 = t.bf16;
    });
    return `torch ${res.torch}`;
  } catch (e) {
    return `torch: not measured (${(e as Error).message})`;
  }
}

// ---- main ----------------------------------------------------------------------------------

if (import.meta.main) {
  const why = DRY ? null : CudaBackend.unavailableReason();
  if (why !== null) {
    console.error(`gpu_bench: CUDA unavailable: ${why}`);
    Deno.exit(2);
  }
  const dev = DRY ? await wasmDevice() : cudaDevice();
  const peak = peakOf(dev.name);
  const md: string[] = [];
  const json: Record<string, unknown> = { device: dev.name, peak };
  /** Writes what is measured so far (a run cut short by the caller's timeout keeps it). */
  const flush = async () => {
    if (OUT) await Deno.writeTextFile(OUT, md.join("\n") + "\n");
    if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(json, null, 2) + "\n");
  };
  md.push(
    `Device: ${dev.name}; peaks used: ${peak.card}, bf16 dense ${peak.bf16} TFLOPS, ` +
      `fp32 ${peak.fp32} TFLOPS, HBM ${peak.hbm} TB/s. deno ${Deno.version.deno}.`,
  );

  if (ONLY.has("train")) {
    const rows: TrainRow[] = [];
    for (const name of Object.keys(TRAIN_SHAPES)) {
      if (left() < 40) {
        rows.push(
          { ...TRAIN_SHAPES[name], experiment: name, error: "skipped: time budget" } as TrainRow,
        );
        continue;
      }
      rows.push(trainStep(dev, name, peak, DRY ? 1 : 3));
      console.error(`gpu_bench: ${name} done (${left().toFixed(0)} s of budget left)`);
    }
    json.train = rows;
    md.push(
      "",
      "### Training step (fp32 kernels)",
      "",
      "Synthetic batch (features ~ N(0, 1), 25 tokens per utterance); step = normalisation, " +
        "SpecAugment, forward, joint CTC + attention loss, backward, clipping, Adam, timed to " +
        "the end of the last kernel; best of up to 3 steps after one warm-up step. FLOPs: the " +
        "matrix products the step ran (forward and backward, 2 m n k each); MFU against the " +
        "bf16 dense peak, and the same rate against the fp32 (non-tensor) peak.",
      "",
      "| experiment | batch (B x frames) | audio s | step ms (best / mean) | audio s/s | " +
        "matmul TFLOP/step | MFU (bf16 peak) | of fp32 peak | peak GiB | loss |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...rows.map((r) =>
        r.error
          ? `| ${r.experiment} | ${r.B} x ${r.T} | - | failed: ${r.error} | | | | | | |`
          : `| ${r.experiment} | ${r.B} x ${r.T} | ${r.audioS} | ${r.stepMs.toFixed(0)} / ` +
            `${r.meanMs.toFixed(0)} | ${(r.audioS / (r.stepMs / 1000)).toFixed(1)} | ` +
            `${r.tflopPerStep.toFixed(2)} | ${(100 * r.mfu).toFixed(2)} % | ` +
            `${(100 * r.fp32Util).toFixed(1)} % | ${r.peakGiB.toFixed(1)} | ${r.loss.toFixed(2)} |`
      ),
    );
  }

  await flush();

  if (ONLY.has("scan") && left() > 20) {
    try {
      const rows = scanBench(dev);
      json.scan = rows;
      md.push(
        "",
        "### Selective scan bandwidth vs a device-to-device copy",
        "",
        "GB/s = bytes the kernel must read and write once (inputs, outputs, saved chunk states) " +
          "/ time; copy = cm_cuda_copy (cudaMemcpyAsync device to device) of as many bytes, " +
          "read + write counted. Mean of 10 (forward) / 5 (backward) calls after 3 warm-up calls.",
        "",
        "| kernel | ms | GB/s | copy GB/s | scan / copy |",
        "|---|---|---|---|---|",
        ...rows.map((r) =>
          `| ${r.what} | ${r.ms.toFixed(3)} | ${r.gbps.toFixed(0)} | ${r.copyGbps.toFixed(0)} | ` +
          `${(100 * r.ratio).toFixed(1)} % |`
        ),
      );
    } catch (e) {
      md.push("", `### Selective scan: failed (${(e as Error).message.split("\n")[0]})`);
    }
  }

  await flush();

  if (ONLY.has("matmul") && left() > 20) {
    try {
      const rows = matmulBench(dev);
      const torch = await torchBench(rows);
      json.matmul = rows;
      json.torch = torch;
      const f = (x?: number) => x === undefined ? "-" : x.toFixed(1);
      md.push(
        "",
        `### Matmul vs torch.matmul (TFLOP/s; ${torch})`,
        "",
        "C = X W^T, mean of 10 calls (ours) / 20 calls (torch, CUDA events) after warm-up; " +
          "torch fp32 with allow_tf32 off (the same arithmetic as ours), TF32 and bf16 for " +
          "reference.",
        "",
        "| layer | M x K x N | ours fp32 | torch fp32 | ours / torch fp32 | torch tf32 | torch bf16 |",
        "|---|---|---|---|---|---|---|",
        ...rows.map((r) =>
          `| ${r.layer} | ${r.shape} | ${f(r.oursTflops)} | ${f(r.torchFp32)} | ` +
          `${r.torchFp32 ? (r.oursTflops / r.torchFp32).toFixed(2) : "-"} | ${f(r.torchTf32)} | ` +
          `${f(r.torchBf16)} |`
        ),
      );
    } catch (e) {
      md.push("", `### Matmul: failed (${(e as Error).message.split("\n")[0]})`);
    }
  }

  dev.close();
  await flush();
  console.log(md.join("\n"));
}
