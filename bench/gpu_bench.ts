/**
 * GPU benchmark on the CUDA backend (build/libconmamba_cuda.so), run by scripts/gpu-check.sh.
 * Sections, in the order they run (each writes its table as soon as it is done, so a run cut
 * short keeps what it measured):
 *
 *   train    training-step throughput of conmamba_small and conmamba_large in each matmul mode
 *            (fp32 ours, bf16 ours, bf16 cuBLAS when a cuBLAS loads; each row says what ran):
 *            one AsrTrainer step (forward with dropout, the joint loss, backward, clipping, Adam)
 *            on a synthetic batch (bench/asr_batch.ts) prepared beforehand (normalisation and
 *            SpecAugment: the train stage's BatchPrep does them in a worker while the previous
 *            step runs; their host time is `deno task bench host`'s), timed to the end of the
 *            last kernel: step time, seconds of audio per second, and model FLOP
 *            utilisation: the matrix-product FLOPs the step actually ran (2 m n k per matmul
 *            call, forward and backward, counted at the backend) / step time / the card's dense
 *            bf16 tensor-core peak; peak GiB of live device memory;
 *   matmul   every matmul path (CudaBackend.setMatmulPrecision: fp32 ours, bf16 ours, fp32
 *            cuBLAS, bf16 cuBLAS; the bf16 ones also with both operands stored as packed bf16,
 *            as the training step feeds them) on the models' shapes next to torch.matmul (fp32
 *            with TF32 off, TF32, bf16), when `python3 -c "import torch"` works and sees the GPU;
 *            ratios ours bf16 / torch bf16 and cuBLAS bf16 / torch bf16, packed and not (issue 10:
 *            >= 70 % and equal);
 *   scan     the selective scan's bandwidth (bytes it must read and write / time) against a
 *            device-to-device copy (cm_cuda_copy) of the same number of bytes;
 *   repeat   repeatability (issue 9): per matmul mode, two runs of one training step of
 *            conmamba_small from the same initial parameters on the same batch; every parameter
 *            and Adam moment compared bit for bit;
 *   leak     a leak check (issue 10: "no leak over 1000 steps"): up to 1000 training steps of the
 *            tiny experiment on 4 cycled batch shapes, recording after each step the live device
 *            bytes, the caching allocator's reserved bytes (live + cached) and the process RSS;
 *   bigbatch one training step of conmamba_large (then conmamba_small) on the recipe's dynamic
 *            batch (max_batch_length_train seconds: the bucket of 15 s utterances, B x T about
 *            50000 frames for the large recipe) in the recipe's matmul mode, with its peak GiB;
 *            an out-of-memory error is the row's result.
 *
 *   deno run -A bench/gpu_bench.ts [--out results.md] [--json results.json] [--budget-s 200]
 *       [--only train,matmul,scan,repeat,leak,bigbatch] [--leak-steps 1000] [--leak-s 60]
 *       [--dry-run]
 *
 * --dry-run runs every section on the Wasm backend at reduced sizes (the tiny experiment for the
 * model sections, a tenth of the matmul and scan sizes): it checks this script's code paths and
 * tables on a machine without a GPU; the modes that need CUDA are reported as not applicable,
 * and its numbers mean nothing. The matmul mode is back at the default (fp32 ours) after every
 * section.
 *
 * Peaks (dense, i.e. without 2:4 sparsity; NVIDIA's datasheets quote the sparse figure, twice
 * these): H100 SXM5 bf16 989.4 TFLOPS, fp32 (non-tensor) 66.9 TFLOPS, HBM3 3.35 TB/s
 * (NVIDIA H100 Tensor Core GPU datasheet: "BF16 Tensor Core 1,979 teraFLOPS*", * with
 * sparsity); H200 SXM the same compute (H200 datasheet: BF16 1,979 TFLOPS with sparsity), HBM3e
 * 4.8 TB/s; H100 PCIe 756 / 51.2; H100 NVL and H200 NVL 835 / 60; A100 312 / 19.5.
 * Exits 2 when CUDA is unavailable, saying why.
 */
import { audioSeconds, experimentBatch, stepSettings } from "./asr_batch.ts";
import { InputNormalization, type NormalizerState } from "../src/audio/input_normalization.ts";
import type { Experiment } from "../src/config/experiment.ts";
import { loadExperiment } from "../src/config/load.ts";
import { bucketOf, bucketPlan } from "../src/data/dynamic_batching.ts";
import type { AsrModel } from "../src/nn/asr_model.ts";
import { initialize } from "../src/nn/init.ts";
import { buildModel } from "../src/nn/model_config.ts";
import type { Backend, Storage } from "../src/tensor/backend.ts";
import { ObservedBackend } from "../src/tensor/observed_backend.ts";
import { CUDA_LIBRARY, CudaBackend, type MatmulPrecision } from "../src/tensor/cuda_backend.ts";
import { selectiveScan, selectiveScanBackward } from "../src/tensor/mamba_ops.ts";
import { packBf16 } from "../src/tensor/bf16.ts";
import { matmul } from "../src/tensor/ops.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import type { Batch } from "../src/train/batches.ts";
import { prepareFeatures } from "../src/train/batch_prep.ts";
import { AsrTrainer } from "../src/train/step.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";

// ---- options -------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const SECTIONS = ["train", "matmul", "scan", "repeat", "leak", "bigbatch"];
const OUT = option("--out");
const JSON_OUT = option("--json");
const BUDGET_S = Number(option("--budget-s") ?? "240");
const ONLY = new Set((option("--only") ?? SECTIONS.join(",")).split(","));
const DRY = Deno.args.includes("--dry-run");
const LEAK_STEPS = Number(option("--leak-steps") ?? (DRY ? "12" : "1000"));
const LEAK_S = Number(option("--leak-s") ?? "60");
const T0 = performance.now();
const left = () => BUDGET_S - (performance.now() - T0) / 1000;
for (const s of ONLY) {
  if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section "${s}" (${SECTIONS})`);
}

// ---- the card ------------------------------------------------------------------------------

interface Peak {
  card: string;
  bf16: number; // dense TFLOPS
  fp32: number; // non-tensor TFLOPS
  hbm: number; // TB/s
}

/** The card's peaks from its name (see the header for the sources). */
/**
 * What BatchPrep's worker does for the trainer's next batch (normalisation with statistics update,
 * SpecAugment), here on this thread before the timed step: returns the normaliser state to hand to
 * AsrTrainer.step. The same bits as the step preparing the batch itself.
 */
function prepareAhead(tr: AsrTrainer, batch: Batch, epoch = 1): NormalizerState {
  const norm = new InputNormalization(tr.normalizer.nMels, tr.normalizer.updateUntilEpoch);
  norm.load(tr.normalizer.state());
  prepareFeatures(
    norm,
    { feats: batch.feats, shape: batch, epoch, micro: tr.counters.micro },
    tr.s,
  );
  return norm.state();
}

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

// ---- matmul modes --------------------------------------------------------------------------

/** A matmul path of the CUDA library (cuda/matmul.cuh: modes 0-3). */
interface MatmulMode {
  label: string;
  precision: MatmulPrecision;
  cublas: boolean;
}
const FP32_OURS: MatmulMode = { label: "fp32 ours", precision: "fp32", cublas: false };
const BF16_OURS: MatmulMode = { label: "bf16 ours", precision: "bf16", cublas: false };
const FP32_CUBLAS: MatmulMode = { label: "fp32 cuBLAS", precision: "fp32", cublas: true };
const BF16_CUBLAS: MatmulMode = { label: "bf16 cuBLAS", precision: "bf16", cublas: true };
const ALL_MODES = [FP32_OURS, BF16_OURS, FP32_CUBLAS, BF16_CUBLAS];
/**
 * The bf16 paths again with both operands stored as packed bf16 (the matmul's a_bf16 / b_bf16, as
 * the training step feeds its backward products and the Linears after bf16-stored activations):
 * 2 bytes per input element, like torch's bf16 timing.
 */
const PACKED_MODES = [BF16_OURS, BF16_CUBLAS];
const packedLabel = (m: MatmulMode) => `${m.label}, packed`;

// ---- the device ---------------------------------------------------------------------------

/** What the benchmark needs beyond the Backend interface. */
interface Device {
  be: Backend;
  name: string;
  /** Waits for every queued op. */
  sync(): void;
  peakBytes(): number;
  resetPeak(): void;
  /** Live bytes and the allocator's reserved bytes (CUDA: live + cached; Wasm: linear memory). */
  memory(): { live: number; reserved: number };
  /** Device-to-device copy of `bytes` (asynchronous on the GPU). */
  copy(dst: Storage, src: Storage, bytes: number): void;
  /** Selects a matmul path; null when it is what now runs, else why it cannot run here (the
   * library then runs the fallback it says). */
  setMode(m: MatmulMode): string | null;
  /** The cuBLAS the library loaded, for the notes. */
  cublasNote(): string;
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
    memory: () => {
      const s = be.memoryStats();
      return { live: s.liveBytes, reserved: s.liveBytes + s.cachedBytes };
    },
    copy: (dst, src, bytes) => {
      lib.symbols.cm_cuda_copy(BigInt(dst.ptr), BigInt(src.ptr), BigInt(bytes));
    },
    setMode: (m) => {
      be.setMatmulPrecision(m.precision, { cublas: m.cublas });
      const got = be.matmulMode();
      if (got.precision === m.precision && (got.library === "cublas") === m.cublas) return null;
      return (m.cublas ? "no cuBLAS loaded (CONMAMBA_CUBLAS names one)" : "not on this card") +
        `: the library would run ${got.precision} ${got.library === "cublas" ? "cuBLAS" : "ours"}`;
    },
    cublasNote: () => {
      const v = be.cublasVersion();
      const env = Deno.env.get("CONMAMBA_CUBLAS");
      return v ? `cuBLAS ${v}${env ? ` (${env})` : ""}` : "no cuBLAS loaded";
    },
    close: () => {
      be.setMatmulPrecision("fp32");
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
    peakBytes: () => be.memoryStats().peakBytes,
    resetPeak: () => be.resetPeak(),
    memory: () => ({ live: be.heap.liveBytes, reserved: be.memoryBytes() }),
    copy: (dst, src, bytes) => {
      new Uint8Array(be.memory.buffer).copyWithin(dst.ptr, src.ptr, src.ptr + bytes);
    },
    // The Wasm kernels have both precisions (bf16 inputs, fp32 accumulation), not cuBLAS.
    setMode: (m) => {
      if (m.cublas) return "n/a on Wasm (dry run)";
      be.setMatmulPrecision(m.precision);
      return null;
    },
    cublasNote: () => "no cuBLAS (Wasm dry run)",
    close: () => be.close(),
  };
}

/** Sizes are divided by this in a dry run (matmul and scan). */
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

// ---- models --------------------------------------------------------------------------------

/** Initial parameters per experiment: initialize() runs once per experiment (10 s on the host
 * for conmamba_large), later models get the same values uploaded. */
const INITIAL = new Map<string, Float32Array[]>();

/** A model of `name` on `be` with the experiment's seeded initial parameters. */
function freshModel(be: Backend, name: string): { c: Experiment; model: AsrModel } {
  const c = loadExperiment(name, {});
  const model = buildModel(be, c);
  const state = [...model.stateDict()].map(([, t]) => t);
  const init = INITIAL.get(name);
  if (init) state.forEach((t, i) => be.upload(t.storage, init[i]));
  else {
    initialize(model, c.seed!);
    INITIAL.set(name, state.map((t) => t.toArray()));
  }
  return { c, model };
}

const gib = (bytes: number) => bytes / 2 ** 30;
const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** A copy of a batch (AsrTrainer.step normalises and augments the features in place). */
const copyBatch = (b: Batch): Batch => ({ ...b, feats: b.feats.slice() });

// ---- training step -------------------------------------------------------------------------

/** Batches: 10 s utterances (1000 frames); the large model gets half the utterances. */
const TRAIN_SHAPES: Record<string, { B: number; T: number }> = DRY
  ? { tiny: { B: 2, T: 200 } }
  : { conmamba_small: { B: 16, T: 1000 }, conmamba_large: { B: 8, T: 1000 } };
/** The training step's matmul paths: fp32 (the reference), bf16 on our tensor-core kernel (what
 * the train stage runs for precision: bf16), bf16 through cuBLAS. */
const TRAIN_MODES = [FP32_OURS, BF16_OURS, BF16_CUBLAS];

interface TrainRow {
  experiment: string;
  mode: string; // the matmul path that ran
  B: number;
  T: number;
  audioS: number;
  stepMs: number; // best timed step
  meanMs: number;
  steps: number; // timed steps
  tflopPerStep: number;
  mfu: number; // vs the bf16 peak
  fp32Util: number; // vs the fp32 non-tensor peak
  peakGiB: number; // live device memory, from the warm-up step on
  loss: number;
  error?: string;
}

/**
 * Rows of one experiment on one batch shape, one per matmul mode: the model is built once; per
 * mode one warm-up step (allocator, caches), then up to `timed` timed steps. A mode this machine
 * lacks, a failure (out of memory included) or too little time left (`minLeft` seconds, from the
 * second mode on) is the row's result.
 */
function trainRows(
  dev: Device,
  name: string,
  shape: { B: number; T: number },
  modes: MatmulMode[],
  peak: Peak,
  timed: number,
  minLeft: number,
): TrainRow[] {
  const be = new Counting(dev.be);
  const rows: TrainRow[] = [];
  let built: { c: Experiment; model: AsrModel; tr: AsrTrainer } | null = null;
  try {
    for (const m of modes) {
      const row: TrainRow = {
        experiment: name,
        mode: m.label,
        ...shape,
        audioS: audioSeconds(shape),
        stepMs: NaN,
        meanMs: NaN,
        steps: 0,
        tflopPerStep: NaN,
        mfu: NaN,
        fp32Util: NaN,
        peakGiB: NaN,
        loss: NaN,
      };
      rows.push(row);
      const why = dev.setMode(m);
      if (why !== null) {
        row.error = `not run: ${why}`;
        continue;
      }
      if (rows.length > 1 && left() < minLeft) {
        row.error = "not run: time budget";
        continue;
      }
      dev.resetPeak();
      try {
        if (!built) {
          const { c, model } = freshModel(be, name);
          const norm = new InputNormalization(c.n_mels!, 4);
          built = { c, model, tr: new AsrTrainer(model, norm, stepSettings(c)) };
        }
        const { c, tr } = built;
        let seed = 1;
        const warm = experimentBatch(c, shape.B, shape.T, seed++);
        tr.step(warm, 1, prepareAhead(tr, warm)); // warm-up
        dev.sync();
        const times: number[] = [];
        for (let i = 0; i < timed && (i === 0 || left() > 30); i++) {
          const batch = experimentBatch(c, shape.B, shape.T, seed++);
          const prepared = prepareAhead(tr, batch); // as BatchPrep would have, before the step
          be.flops = 0;
          const t0 = performance.now();
          const log = tr.step(batch, 1, prepared);
          dev.sync();
          times.push(performance.now() - t0);
          row.loss = log.loss;
          row.tflopPerStep = be.flops / 1e12;
        }
        row.steps = times.length;
        row.stepMs = Math.min(...times);
        row.meanMs = times.reduce((a, b) => a + b, 0) / times.length;
        const tflops = row.tflopPerStep / (row.stepMs / 1000);
        row.mfu = tflops / peak.bf16;
        row.fp32Util = tflops / peak.fp32;
      } catch (e) {
        row.error = `failed: ${firstLine(e)}`;
      } finally {
        row.peakGiB = gib(dev.peakBytes());
        be.resetStep();
      }
    }
  } finally {
    built?.tr.free();
    built?.model.free();
    be.resetStep();
    dev.setMode(FP32_OURS);
  }
  return rows;
}

function trainTable(rows: TrainRow[]): string[] {
  const gb = (r: TrainRow) => Number.isFinite(r.peakGiB) ? r.peakGiB.toFixed(1) : "-";
  return [
    "| experiment | matmul | batch (B x frames) | audio s | step ms (best / mean of n) | " +
    "audio s/s | matmul TFLOP/step | MFU (bf16 peak) | of fp32 peak | peak GiB | loss |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) =>
      r.error
        ? `| ${r.experiment} | ${r.mode} | ${r.B} x ${r.T} | ${r.audioS} | ${r.error} | | | | | ` +
          `${gb(r)} | |`
        : `| ${r.experiment} | ${r.mode} | ${r.B} x ${r.T} | ${r.audioS} | ` +
          `${r.stepMs.toFixed(0)} / ${r.meanMs.toFixed(0)} of ${r.steps} | ` +
          `${(r.audioS / (r.stepMs / 1000)).toFixed(1)} | ${r.tflopPerStep.toFixed(2)} | ` +
          `${(100 * r.mfu).toFixed(2)} % | ${(100 * r.fp32Util).toFixed(1)} % | ${gb(r)} | ` +
          `${r.loss.toFixed(2)} |`
    ),
  ];
}

// ---- selective scan vs copy ----------------------------------------------------------------

interface ScanRow {
  what: string;
  ms: number;
  gbps: number;
  copyGbps: number;
  ratio: number;
}

/** Milliseconds per call of `fn`: 3 warm-up calls, then the mean of `reps` calls. */
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

// ---- matmul vs torch -----------------------------------------------------------------------

/**
 * (M, K, N) of C = X W^T, W (N, K) as nn.Linear keeps it: the models' products at B T'; rows
 * marked "dW" are weight gradients C (out, in) = dY^T X over the rows of a recipe batch (32 x 390
 * tokens), A stored (K, M) and used transposed: the long-k products the CUDA backend splits
 * along k (cuda/matmul.cuh split_k_plan).
 */
const MATMUL_SHAPES: [string, number, number, number, "dW"?][] = [
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
  ["large FFN w1 dW (32x390 tokens)", 2048, 12480, 512, "dW"],
  ["large Mamba in_proj dW", 2048, 12480, 512, "dW"],
  ["large Mamba x_proj dW", 64, 12480, 1024, "dW"],
  ["large Mamba dt_proj dW", 1024, 12480, 32, "dW"],
];

interface MatmulRow {
  layer: string;
  shape: string;
  /** TFLOP/s per matmul path (FP32_OURS.label ...); null: the path did not run. */
  tflops: Record<string, number | null>;
  torchFp32?: number;
  torchTf32?: number;
  torchBf16?: number;
}

/** Every matmul path on every shape; `paths` says per path "ran" or why it did not. */
function matmulBench(dev: Device): { rows: MatmulRow[]; paths: Record<string, string> } {
  const be = dev.be, rows: MatmulRow[] = [], paths: Record<string, string> = {};
  try {
    for (const m of ALL_MODES) paths[m.label] = dev.setMode(m) ?? "ran";
    for (const [layer, M0, K0, N, kind] of MATMUL_SHAPES) {
      const dW = kind === "dW"; // the rows are K here
      const M = dW ? M0 : Math.ceil(M0 / SHRINK), K = dW ? Math.ceil(K0 / SHRINK) : K0;
      const row: MatmulRow = { layer, shape: `${M}x${K}x${N}${dW ? " (A^T B)" : ""}`, tflops: {} };
      rows.push(row);
      const fill = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
      // X W^T: x (M, K), w (N, K); dW: x = dY stored (K, M), w = X (K, N).
      const x = Tensor.from(be, dW ? [K, M] : [M, K], fill(M * K), "param");
      const w = Tensor.from(be, dW ? [K, N] : [N, K], fill(N * K), "param");
      const out = Tensor.empty(be, [M, N], "param");
      const product = dW ? { transA: true, out } : { transB: true, out };
      try {
        for (const m of ALL_MODES) {
          row.tflops[m.label] = null;
          if (paths[m.label] !== "ran") continue;
          if (left() < 15) {
            paths[m.label] = "ran on the first shapes only (time budget)";
            continue;
          }
          dev.setMode(m);
          const ms = timeIt(dev, () => void matmul(x, w, product), DRY ? 2 : 10);
          row.tflops[m.label] = (2 * M * N * K) / (ms / 1000) / 1e12;
        }
        for (const m of PACKED_MODES) {
          row.tflops[packedLabel(m)] = null;
          if (paths[m.label] !== "ran" || left() < 15 || (M * K) % 2 || (N * K) % 2) continue;
          dev.setMode(m);
          const px = packBf16(x), pw = packBf16(w);
          try {
            const ms = timeIt(dev, () => void matmul(px, pw, product), DRY ? 2 : 10);
            row.tflops[packedLabel(m)] = (2 * M * N * K) / (ms / 1000) / 1e12;
          } finally {
            px.free();
            pw.free();
          }
        }
      } finally {
        for (const t of [x, w, out]) t.free();
      }
    }
  } finally {
    dev.setMode(FP32_OURS);
  }
  return { rows, paths };
}
const TORCH = `
import json, sys, torch
assert torch.cuda.is_available()
out = []
for m, k, n, dw in json.loads(sys.argv[1]):
    # X W^T (x (m, k), w (n, k)), or a weight gradient dY^T X (x (k, m), w (k, n))
    x = torch.randn(k, m, device="cuda") if dw else torch.randn(m, k, device="cuda")
    w = torch.randn(k, n, device="cuda") if dw else torch.randn(n, k, device="cuda")
    r = {}
    for name, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = x.to(dt), w.to(dt)
        f = (lambda: torch.matmul(a.t(), b)) if dw else (lambda: torch.matmul(a, b.t()))
        for _ in range(3): f()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(20): f()
        e.record(); torch.cuda.synchronize()
        r[name] = 2 * m * n * k / (s.elapsed_time(e) / 20 / 1000) / 1e12
    out.append(r)
print(json.dumps({"torch": torch.__version__, "rows": out}))
`;

async function torchBench(rows: MatmulRow[]): Promise<string> {
  if (DRY) return "torch: not measured (dry run)";
  const shapes = MATMUL_SHAPES.map(([, m, k, n, kind]) => [m, k, n, kind === "dW" ? 1 : 0]);
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
    return `torch: not measured (${firstLine(e)})`;
  }
}

function matmulTable(rows: MatmulRow[]): string[] {
  const f = (x?: number | null) => x === undefined || x === null ? "-" : x.toFixed(1);
  const ratio = (a?: number | null, b?: number) => a && b ? a / b : undefined;
  const pct = (x?: number) => x === undefined ? "-" : `${(100 * x).toFixed(0)} %`;
  const ratios = (r: MatmulRow) => [
    ratio(r.tflops[FP32_OURS.label], r.torchFp32),
    ratio(r.tflops[BF16_OURS.label], r.torchBf16),
    ratio(r.tflops[BF16_CUBLAS.label], r.torchBf16),
    ratio(r.tflops[packedLabel(BF16_OURS)], r.torchBf16),
    ratio(r.tflops[packedLabel(BF16_CUBLAS)], r.torchBf16),
  ];
  const geomean = (i: number) => {
    const xs = rows.map((r) => ratios(r)[i]).filter((x): x is number => x !== undefined);
    return xs.length ? Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length) : undefined;
  };
  const labels = [...ALL_MODES.map((m) => m.label), ...PACKED_MODES.map(packedLabel)];
  return [
    `| layer | M x K x N | ${labels.join(" | ")} | torch fp32 | torch tf32 | torch bf16 | ` +
    "ours fp32 / torch fp32 | ours bf16 / torch bf16 | cuBLAS bf16 / torch bf16 | " +
    "ours bf16 packed / torch bf16 | cuBLAS bf16 packed / torch bf16 |",
    `|---|---|${labels.map(() => "---|").join("")}---|---|---|---|---|---|---|---|`,
    ...rows.map((r) =>
      `| ${r.layer} | ${r.shape} | ` + labels.map((l) => f(r.tflops[l])).join(" | ") +
      ` | ${f(r.torchFp32)} | ${f(r.torchTf32)} | ${f(r.torchBf16)} | ` +
      ratios(r).map(pct).join(" | ") + " |"
    ),
    `| ${
      ["**geometric mean**", "", ...labels.map(() => ""), "", "", ""]
        .concat([0, 1, 2, 3, 4].map((i) => pct(geomean(i))))
        .join(" | ")
    } |`,
  ];
}

// ---- repeatability -------------------------------------------------------------------------

/** One training step of a small model: its batch is the recipe's smallest realistic one. */
const REPEAT = DRY ? { name: "tiny", B: 2, T: 200 } : { name: "conmamba_small", B: 4, T: 500 };

interface RepeatRow {
  mode: string;
  result: string;
  elements?: number;
  differing?: number;
  tensorsDiffering?: number;
  maxAbsDiff?: number;
  /** Elements the step changed (run A against the initial parameters): the step did update. */
  changedByStep?: number;
  stepMs?: number;
}

/** Parameters, buffers and both Adam moments after one step from the initial parameters. */
function oneStep(dev: Device, batch: Batch): { state: Float32Array[]; n: number; ms: number } {
  const { c, model } = freshModel(dev.be, REPEAT.name);
  const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
  try {
    const t0 = performance.now();
    const log = tr.step(copyBatch(batch), 1);
    dev.sync();
    const ms = performance.now() - t0;
    const own = [...model.stateDict()].map(([, t]) => t);
    const state = [...own, ...tr.m, ...tr.v].map((t) => t.toArray());
    state.push(Float32Array.of(log.loss));
    return { state, n: own.length, ms };
  } finally {
    tr.free();
    model.free();
    dev.be.resetStep();
  }
}

/** Elements whose float32 bits differ, tensors with any, the largest absolute difference. */
function bitDiff(a: Float32Array[], b: Float32Array[]) {
  let elements = 0, differing = 0, tensors = 0, maxAbs = 0;
  a.forEach((x, i) => {
    const y = b[i];
    const ux = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const uy = new Uint32Array(y.buffer, y.byteOffset, y.length);
    let d = 0;
    for (let j = 0; j < ux.length; j++) {
      if (ux[j] !== uy[j]) {
        d++;
        const abs = Math.abs(x[j] - y[j]);
        if (!(abs <= maxAbs)) maxAbs = abs; // NaN wins
      }
    }
    elements += x.length;
    differing += d;
    if (d) tensors++;
  });
  return { elements, differing, tensors, maxAbs };
}

function repeatBench(dev: Device): RepeatRow[] {
  const rows: RepeatRow[] = [];
  const c = loadExperiment(REPEAT.name, {});
  const batch = experimentBatch(c, REPEAT.B, REPEAT.T, 7);
  try {
    for (const m of ALL_MODES) {
      const why = dev.setMode(m);
      if (why !== null) {
        rows.push({ mode: m.label, result: `not run: ${why}` });
        continue;
      }
      if (left() < 45) {
        rows.push({ mode: m.label, result: "not run: time budget" });
        continue;
      }
      try {
        const a = oneStep(dev, batch), b = oneStep(dev, batch);
        const d = bitDiff(a.state, b.state);
        const init = INITIAL.get(REPEAT.name)!;
        const changed = bitDiff(a.state.slice(0, a.n), init);
        rows.push({
          mode: m.label,
          result: d.differing === 0
            ? "bitwise equal"
            : `**${d.differing} of ${d.elements} elements differ** (${d.tensors} tensors, ` +
              `max |diff| ${d.maxAbs.toExponential(2)})`,
          elements: d.elements,
          differing: d.differing,
          tensorsDiffering: d.tensors,
          maxAbsDiff: d.maxAbs,
          changedByStep: changed.differing,
          stepMs: Math.min(a.ms, b.ms),
        });
      } catch (e) {
        rows.push({ mode: m.label, result: `failed: ${firstLine(e)}` });
      }
    }
  } finally {
    dev.setMode(FP32_OURS);
  }
  return rows;
}

// ---- leak check ----------------------------------------------------------------------------

const LEAK = DRY
  ? { name: "tiny", B: 2, T: [100, 150] }
  : { name: "tiny", B: 8, T: [300, 400, 500, 600] };

interface Series {
  first: number; // after step 1
  warm: number; // after the warm-up steps (each shape twice)
  last: number;
  max: number;
}

interface LeakResult {
  experiment: string;
  B: number;
  T: number[];
  steps: number;
  seconds: number;
  warmStep: number;
  live: Series;
  reserved: Series;
  rss: Series;
  liveFlat: boolean;
  reservedFlat: boolean;
  nonFinite: number;
  error?: string;
  /** Every step's values (bench.json only). */
  samples: { live: number[]; reserved: number[]; rss: number[] };
}

/** Training steps until LEAK_STEPS or `seconds`, memory recorded after every step. */
function leakBench(dev: Device, seconds: number): LeakResult {
  const { c, model } = freshModel(dev.be, LEAK.name);
  const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
  const batches = LEAK.T.map((T, i) => experimentBatch(c, LEAK.B, T, 100 + i));
  const warm = 2 * LEAK.T.length; // steps before the allocator has seen every shape twice
  const live: number[] = [], reserved: number[] = [], rss: number[] = [];
  let nonFinite = 0, error: string | undefined;
  const t0 = performance.now();
  try {
    for (let i = 0; i < LEAK_STEPS; i++) {
      if (i > warm + 1 && performance.now() - t0 > 1000 * seconds) break;
      // 100 steps an epoch: the trainer's per-epoch non-finite limit never stops a long run.
      if (i > 0 && i % 100 === 0) tr.endEpoch();
      const log = tr.step(copyBatch(batches[i % batches.length]), 1 + Math.floor(i / 100));
      dev.sync();
      if (!log.finite) nonFinite++;
      const m = dev.memory();
      live.push(m.live);
      reserved.push(m.reserved);
      rss.push(Deno.memoryUsage().rss);
    }
  } catch (e) {
    error = firstLine(e);
  } finally {
    tr.free();
    model.free();
    dev.be.resetStep();
  }
  const w = Math.min(warm, live.length) - 1;
  const series = (xs: number[]): Series => ({
    first: xs[0],
    warm: xs[w],
    last: xs[xs.length - 1],
    max: Math.max(...xs),
  });
  const flat = (xs: number[]) => xs.slice(w).every((x) => x === xs[w]);
  return {
    experiment: LEAK.name,
    B: LEAK.B,
    T: LEAK.T,
    steps: live.length,
    seconds: (performance.now() - t0) / 1000,
    warmStep: w + 1,
    live: series(live),
    reserved: series(reserved),
    rss: series(rss),
    liveFlat: flat(live),
    reservedFlat: flat(reserved),
    nonFinite,
    error,
    samples: { live, reserved, rss },
  };
}

// ---- the recipe's batch --------------------------------------------------------------------

/** Utterance length whose dynamic-batching bucket makes the batch (LibriSpeech's training
 * utterances are mostly 12-16 s); the tiny experiment's budget is 20 s. */
const BIG = DRY
  ? [{ name: "tiny", uttS: 4 }]
  : [{ name: "conmamba_large", uttS: 15 }, { name: "conmamba_small", uttS: 15 }];

/** The recipe's batch for utterances of `uttS` seconds: that bucket's utterance count and its
 * upper duration as the padded length (src/data/dynamic_batching.ts). */
function recipeBatch(c: Experiment, uttS: number) {
  const plan = bucketPlan(c.max_batch_length_train!, c.num_bucket!, c.max_batch_ex!);
  const k = bucketOf(plan, uttS);
  const boundary = plan.boundaries[Math.min(k, plan.boundaries.length - 1)];
  return {
    B: Math.min(plan.batchSizes[k], c.max_batch_ex!),
    T: Math.floor(boundary * 100),
    bucket: k,
    boundary,
    maxBatchLength: c.max_batch_length_train!,
  };
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
  /** Writes what is measured so far (a run cut short by the caller's timeout keeps it), and
   * `running`: what was under way if the run stops before the next flush. */
  const flush = async (running?: string) => {
    const tail = running
      ? [
        "",
        `### ${running}: started at ${((performance.now() - T0) / 1000).toFixed(0)} s, ` +
        "still running when the benchmark was stopped",
      ]
      : [];
    if (OUT) await Deno.writeTextFile(OUT, [...md, ...tail].join("\n") + "\n");
    if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(json, null, 2) + "\n");
  };
  const done = (what: string) =>
    console.error(`gpu_bench: ${what} done (${left().toFixed(0)} s of budget left)`);
  const skipped = (title: string) => md.push("", `### ${title}: not run (time budget)`);
  md.push(
    `Device: ${dev.name}; peaks used: ${peak.card}, bf16 dense ${peak.bf16} TFLOPS, ` +
      `fp32 ${peak.fp32} TFLOPS, HBM ${peak.hbm} TB/s. deno ${Deno.version.deno}; ` +
      `${dev.cublasNote()}. Budget ${BUDGET_S} s.`,
  );
  await flush();

  if (ONLY.has("train")) {
    const rows: TrainRow[] = [];
    for (const [name, shape] of Object.entries(TRAIN_SHAPES)) {
      // The first experiment always runs; after it, keep time for the other sections.
      const minLeft = rows.length === 0 ? 0 : 120;
      if (left() < minLeft) {
        rows.push(
          ...TRAIN_MODES.map((m) => ({
            ...shape,
            experiment: name,
            mode: m.label,
            audioS: audioSeconds(shape),
            error: "not run: time budget",
          } as TrainRow)),
        );
        continue;
      }
      await flush(`Training step, ${name}`);
      rows.push(...trainRows(dev, name, shape, TRAIN_MODES, peak, DRY ? 1 : 3, 120));
      done(`training step ${name}`);
    }
    json.train = rows;
    md.push(
      "",
      "### Training step per matmul path",
      "",
      "Synthetic batch (features ~ N(0, 1), 25 tokens per utterance); step = normalisation, " +
        "SpecAugment, forward, joint CTC + attention loss, backward, clipping, Adam, timed to " +
        "the end of the last kernel; best (and mean) of up to 3 steps after one warm-up step " +
        "per path, one model per experiment (its parameters move on from path to path). " +
        "matmul: the path that ran (CudaBackend.setMatmulPrecision; the train stage runs " +
        "`bf16 ours` for precision: bf16). FLOPs: the matrix products the step ran (forward " +
        "and backward, 2 m n k each); MFU against the bf16 dense peak, and the same rate against " +
        "the fp32 (non-tensor) peak. Peak GiB: live device memory (size classes) from the " +
        "warm-up step on.",
      "",
      ...trainTable(rows),
    );
    await flush();
  }

  if (ONLY.has("matmul")) {
    if (left() < 30) skipped("Matmul paths vs torch.matmul");
    else {
      await flush("Matmul paths vs torch.matmul");
      try {
        const { rows, paths } = matmulBench(dev);
        const torch = await torchBench(rows);
        json.matmul = rows;
        json.matmulPaths = paths;
        json.torch = torch;
        md.push(
          "",
          `### Matmul paths vs torch.matmul (TFLOP/s; ${torch})`,
          "",
          "C = X W^T on the models' shapes (A^T B: a weight gradient dY^T X), mean of 10 calls (ours, cuBLAS) / 20 calls (torch, " +
            "CUDA events) after warm-up. Our paths read and write fp32 (bf16: rounded inputs, " +
            "fp32 accumulation; cuBLAS bf16 packs the inputs to bf16 first); torch fp32 with " +
            "allow_tf32 off (the same arithmetic as fp32 ours), TF32, and bf16 on bf16 tensors. " +
            "Issue 10's goals: ours bf16 >= 70 % of torch bf16, cuBLAS bf16 equal to it.",
          "",
          "Paths: " + ALL_MODES.map((m) => `${m.label}: ${paths[m.label]}`).join("; ") +
            `; ${dev.cublasNote()}.`,
          "",
          ...matmulTable(rows),
        );
      } catch (e) {
        md.push("", `### Matmul: failed (${firstLine(e)})`);
      }
      done("matmul");
    }
    await flush();
  }

  if (ONLY.has("scan")) {
    if (left() < 25) skipped("Selective scan bandwidth");
    else {
      await flush("Selective scan bandwidth");
      try {
        const rows = scanBench(dev);
        json.scan = rows;
        md.push(
          "",
          "### Selective scan bandwidth vs a device-to-device copy",
          "",
          "GB/s = bytes the kernel must read and write once (inputs, outputs, saved chunk " +
            "states) / time; copy = cm_cuda_copy (cudaMemcpyAsync device to device) of as many " +
            "bytes, read + write counted. Mean of 10 (forward) / 5 (backward) calls after 3 " +
            "warm-up calls.",
          "",
          "| kernel | ms | GB/s | copy GB/s | scan / copy |",
          "|---|---|---|---|---|",
          ...rows.map((r) =>
            `| ${r.what} | ${r.ms.toFixed(3)} | ${r.gbps.toFixed(0)} | ` +
            `${r.copyGbps.toFixed(0)} | ${(100 * r.ratio).toFixed(1)} % |`
          ),
        );
      } catch (e) {
        md.push("", `### Selective scan: failed (${firstLine(e)})`);
      }
      done("scan");
    }
    await flush();
  }

  if (ONLY.has("repeat")) {
    await flush("Repeatability");
    const rows = repeatBench(dev);
    json.repeat = rows;
    md.push(
      "",
      `### Repeatability: one training step twice per matmul path (${REPEAT.name}, ` +
        `${REPEAT.B} x ${REPEAT.T} frames)`,
      "",
      "Issue 9: two runs of one training step are bitwise equal. Each run builds the model " +
        "with the same initial parameters, takes one step (with its Adam update) on the same " +
        "batch, and downloads every parameter, buffer, both Adam moments and the loss; the " +
        "two runs' float32 bits are compared. changed by the step: elements the step moved " +
        "from their initial value (it did train).",
      "",
      "| matmul | result | elements compared | changed by the step | step ms |",
      "|---|---|---|---|---|",
      ...rows.map((r) =>
        `| ${r.mode} | ${r.result} | ${r.elements ?? "-"} | ${r.changedByStep ?? "-"} | ` +
        `${r.stepMs === undefined ? "-" : r.stepMs.toFixed(0)} |`
      ),
    );
    done("repeatability");
    await flush();
  }

  if (ONLY.has("leak")) {
    // Keep 45 s for the recipe's batch (conmamba_large: a step of ~50000 frames) after it.
    const seconds = Math.min(LEAK_S, left() - (ONLY.has("bigbatch") ? 45 : 10));
    if (seconds < 10) skipped("Leak check");
    else {
      await flush(`Leak check (at most ${LEAK_STEPS} steps or ${seconds.toFixed(0)} s)`);
      try {
        const r = leakBench(dev, seconds);
        json.leak = r;
        const mib = (x: number) => (x / 2 ** 20).toFixed(1);
        const line = (label: string, s: Series) =>
          `| ${label} | ${mib(s.first)} | ${mib(s.warm)} | ${mib(s.last)} | ${mib(s.max)} | ` +
          `${mib(s.last - s.warm)} |`;
        const verdict = (flat: boolean, s: Series) =>
          flat
            ? `flat (constant from step ${r.warmStep} to ${r.steps})`
            : `**not flat**: ${s.last - s.warm} bytes more at step ${r.steps} than at step ` +
              `${r.warmStep} (max ${s.max})`;
        md.push(
          "",
          `### Leak check: ${r.steps} training steps of ${r.experiment} (issue 10: no leak over ` +
            "1000 steps)",
          "",
          `Batches of ${r.B} x (${r.T.join(", ")}) frames in turn, fp32 ours, ` +
            `${r.seconds.toFixed(1)} s (${(1000 * r.seconds / Math.max(1, r.steps)).toFixed(1)} ` +
            `ms a step, batch copy and memory probes included); after each step (its ` +
            "resetStep done): live device bytes, the caching allocator's reserved bytes " +
            "(live + cached), the process RSS. Warm-up: every shape seen twice." +
            (r.nonFinite ? ` Non-finite losses: ${r.nonFinite}.` : "") +
            (r.error ? ` Stopped by an error: ${r.error}.` : ""),
          "",
        );
        if (r.steps === 0) md.push(`No step completed (${r.error}).`);
        else {
          md.push(
            "| MiB | after step 1 | after warm-up | last | max | last - warm-up |",
            "|---|---|---|---|---|---|",
            line("live (device)", r.live),
            line("reserved (device)", r.reserved),
            line("RSS (host, GC-dependent)", r.rss),
            "",
            `Live: ${verdict(r.liveFlat, r.live)}. Reserved: ` +
              `${verdict(r.reservedFlat, r.reserved)}.`,
          );
        }
      } catch (e) {
        md.push("", `### Leak check: failed (${firstLine(e)})`);
      }
      done("leak check");
    }
    await flush();
  }

  if (ONLY.has("bigbatch")) {
    const rows: TrainRow[] = [], notes: string[] = [];
    for (const { name, uttS } of BIG) {
      const c = loadExperiment(name, {});
      const b = recipeBatch(c, uttS);
      const mode = c.precision === "bf16" ? BF16_OURS : FP32_OURS;
      notes.push(
        `${name}: ${uttS} s utterances, max_batch_length_train ${b.maxBatchLength} s, bucket ` +
          `${b.bucket} ` +
          `(utterances up to ${b.boundary.toFixed(2)} s) holds ${b.B}: ${b.B} x ${b.T} = ` +
          `${b.B * b.T} frames`,
      );
      if (left() < (rows.length === 0 ? 25 : 40)) {
        rows.push({
          experiment: name,
          mode: mode.label,
          B: b.B,
          T: b.T,
          audioS: audioSeconds(b),
          error: "not run: time budget",
        } as TrainRow);
        continue;
      }
      await flush(`Training step on the recipe's batch, ${name} ${b.B} x ${b.T}`);
      rows.push(...trainRows(dev, name, { B: b.B, T: b.T }, [mode], peak, DRY ? 1 : 2, 0));
      done(`recipe batch ${name}`);
    }
    json.bigbatch = { rows, notes };
    md.push(
      "",
      "### Training step on the recipe's batch",
      "",
      "The dynamic batch the recipe forms from utterances of one length (LibriSpeech's " +
        "training utterances are mostly 12-16 s; src/data/dynamic_batching.ts; " +
        notes.join("; ") + "), synthetic features, in the train stage's matmul path for the " +
        "recipe's precision; one warm-up step, then up to 2 timed. An error (out of GPU memory " +
        "included) is the row's result, with the live peak reached before it.",
      "",
      ...trainTable(rows),
    );
    await flush();
  }

  dev.close();
  await flush();
  console.log(md.join("\n"));
}
