/**
 * Selective scan throughput (CONMAMBA_SPEC.md 4.7) on the encoder shapes, forward and backward,
 * in GB/s of the bytes each must move at least (every input read once, every output written
 * once), next to a memory copy of the same bytes through the same backend (the `scale` op with
 * alpha 1: read n floats, write n) measured in the same run, with 1 thread and all threads.
 *
 *   deno run -A bench/ops_scan.ts      (needs build/kernels.wasm: `make wasm`)
 */
import { bestSeconds } from "./timing.ts";
import { scale } from "../src/tensor/ops.ts";
import { SCAN_CHUNK, selectiveScan, selectiveScanBackward } from "../src/tensor/mamba_ops.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";

const SHAPES = [
  // B sequences of T' = T/4 frames (after the CNN front end), Di = 2 d, Ns = 16.
  { label: "conmamba_small", b: 8, t: 500, di: 288, ns: 16 },
  { label: "conmamba_large", b: 8, t: 500, di: 1024, ns: 16 },
];
const REPEATS = 3;

const best = (fn: () => void) => bestSeconds(fn, REPEATS);

export interface ScanRow {
  label: string;
  direction: "forward" | "backward";
  threads: number;
  mbytes: number;
  ms: number;
  gbps: number;
  copy_gbps: number;
}

/** Bytes the forward and backward move at least (f32), from the tensors they read and write. */
function scanBytes(b: number, t: number, di: number, ns: number) {
  const seq = b * t * di, bc = b * t * ns, states = b * Math.ceil(t / SCAN_CHUNK) * di * ns;
  const params = di * ns + 2 * di; // A, D, delta_bias
  const forward = 4 * (3 * seq + 2 * bc + params + seq + states); // u delta z B C A D db -> out states
  // u delta z B C states dout A D db -> du ddelta dz dB dC, per-sequence dA dD ddb
  const backward = 4 * (4 * seq + 2 * bc + states + params + 3 * seq + 2 * bc + b * params);
  return { forward, backward };
}

function measure(be: WasmBackend, s: (typeof SHAPES)[number]): ScanRow[] {
  const { b, t, di, ns } = s;
  const fill = (shape: number[], f: (i: number) => number) =>
    Tensor.from(
      be,
      shape,
      Float32Array.from({ length: shape.reduce((x, y) => x * y) }, (_, i) => f(i)),
    );
  const q = {
    u: fill([b, t, di], (i) => ((i % 13) - 6) / 6),
    delta: fill([b, t, di], (i) => ((i % 7) - 3) / 3),
    A: fill([di, ns], (i) => -1 - (i % ns)),
    B: fill([b, t, ns], (i) => ((i % 5) - 2) / 2),
    C: fill([b, t, ns], (i) => ((i % 3) - 1) / 2),
    D: fill([di], () => 1),
    z: fill([b, t, di], (i) => ((i % 11) - 5) / 5),
    deltaBias: fill([di], () => -2),
  };
  const dout = fill([b, t, di], (i) => ((i % 9) - 4) / 4);
  let saved = selectiveScan(q);
  const fwd = best(() => (saved = selectiveScan(q)));
  const bwd = best(() => selectiveScanBackward(dout, q, saved));
  const bytes = scanBytes(b, t, di, ns);
  const copy = (n: number) => {
    const x = fill([n], (i) => i % 17), y = Tensor.empty(be, [n]);
    return (8 * n) / best(() => scale(x, 1, y)) / 1e9;
  };
  const row = (direction: ScanRow["direction"], sec: number, by: number): ScanRow => ({
    label: s.label,
    direction,
    threads: be.threads,
    mbytes: by / 1e6,
    ms: sec * 1e3,
    gbps: by / sec / 1e9,
    copy_gbps: copy(Math.round(by / 8)),
  });
  const rows = [row("forward", fwd, bytes.forward), row("backward", bwd, bytes.backward)];
  be.resetStep();
  return rows;
}

export async function scanBench(): Promise<ScanRow[]> {
  const rows: ScanRow[] = [];
  for (const threads of [1, navigator.hardwareConcurrency]) {
    const be = await WasmBackend.create({ threads });
    try {
      for (const s of SHAPES) rows.push(...measure(be, s));
    } finally {
      be.close();
    }
  }
  return rows;
}

export function scanTable(rows: ScanRow[]): string {
  const out = [
    `Selective scan (B 8, T' 500, Ns 16), best of ${REPEATS}; GB/s of the bytes it must move ` +
    "vs a copy of as many bytes (`scale` by 1) in the same run",
    "",
    "| layer (Di) | direction | threads | MB moved | ms | scan GB/s | copy GB/s | scan / copy |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.label} | ${r.direction} | ${r.threads} | ${r.mbytes.toFixed(1)} | ${
        r.ms.toFixed(1)
      } ` +
        `| ${r.gbps.toFixed(2)} | ${r.copy_gbps.toFixed(2)} | ${
          (r.gbps / r.copy_gbps).toFixed(3)
        } |`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) console.log(scanTable(await scanBench()));
