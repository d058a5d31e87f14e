/**
 * `deno task bench [name...]`: benchmarks as markdown tables, each with a baseline measured in
 * the same run. Names: pipeline, fbank, tokenizer, gemm, scan, decode (real-time factor of the
 * searches, 1 thread vs all), train (training step throughput, 1 thread vs all), model (forward
 * and forward + backward per second of audio, beside the stated PyTorch figure), floors (GPU
 * FLOP and byte floors of a conmamba_large step, computed without running a kernel), host (the
 * host's time in that step on the CUDA path, the library replaced by a host stub) (default: all).
 * With --json the last line is one JSON object: gemm's rows
 * ({"rows":[{"shape", "ours_gflops_1t", ...}]}).
 */
import { audioBench } from "./audio_bench.ts";
import { decodeBench, decodeTable } from "./decode_bench.ts";
import { gemmBench, gemmTable } from "./ops_matmul.ts";
import { hostBench, hostTable } from "./host_bench.ts";
import { FLOOR_BATCH, floorsBench, floorsTable } from "./gpu_floors.ts";
import { modelBench, modelTable } from "./model_bench.ts";
import { pipelineBench, type Row } from "./pipeline_bench.ts";
import { scanBench, scanTable } from "./ops_scan.ts";
import { tokenizerBench } from "./tokenizer_bench.ts";
import { trainBench, trainTable } from "./train_bench.ts";

function printTable(title: string, rows: Row[]): void {
  console.log(`\n### ${title}\n`);
  console.log("| measurement | ours | baseline | ratio (baseline time / ours) |");
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.what} | ${r.ours} | ${r.baseline} | ${r.ratio} |`);
}

const BENCHES: Record<string, () => Promise<void>> = {
  pipeline: async () => printTable("pipeline engine", await pipelineBench()),
  tokenizer: async () => printTable("tokenizer training", await tokenizerBench()),
  fbank: async () => printTable("audio front end, x real time on one core", await audioBench()),
  gemm: async () => {
    const result = await gemmBench();
    console.log(`\n### gemm (Wasm kernels vs OpenBLAS)\n\n${gemmTable(result)}`);
    jsonOut = { rows: result.rows };
  },
  scan: async () =>
    console.log(`\n### selective scan (vs a copy)\n\n${scanTable(await scanBench())}`),
  decode: async () =>
    console.log(`\n### decoding (Wasm), real-time factor\n\n${decodeTable(await decodeBench())}`),
  train: async () =>
    console.log(`\n### training step (Wasm, 1 thread vs all)\n\n${trainTable(await trainBench())}`),
  floors: () => {
    const r = floorsBench();
    r.bf16 = floorsBench("conmamba_large", FLOOR_BATCH, "bf16");
    console.log(
      `\n### GPU floors: conmamba_large S2S step (computed, no GPU)\n\n${floorsTable(r)}`,
    );
    return Promise.resolve();
  },
  host: async () =>
    console.log(
      `\n### host time of a GPU training step (no GPU)\n\n${hostTable(await hostBench())}`,
    ),
  model: async () =>
    console.log(
      `\n### model forward and forward + backward (Wasm)\n\n${modelTable(await modelBench())}`,
    ),
};

let jsonOut: unknown = null;
const json = Deno.args.includes("--json");
const names = Deno.args.filter((a) => a !== "--json");
const wanted = names.length > 0 ? names : Object.keys(BENCHES);
for (const w of wanted) {
  if (!BENCHES[w]) {
    console.error(`error: unknown benchmark "${w}"; known: ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
}
console.log(
  `# deno task bench — ${new Date().toISOString()}, deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} cores`,
);
for (const w of wanted) await BENCHES[w]();
if (json && jsonOut !== null) console.log(JSON.stringify(jsonOut));
