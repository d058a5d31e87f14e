/**
 * Initialisation (CONMAMBA_SPEC.md 6, G1) on the full-size CTC/conmamba_large model: sample
 * statistics of each kind of tensor against the distribution the original draws from. With n >= 512
 * values a sample std is within ~3/sqrt(2n) of the true one; the bounds below leave margin.
 */
import { initialize, Rng } from "../../src/nn/init.ts";
import { ConMambaCtc } from "../../src/nn/ctc_model.ts";
import { AsrModel } from "../../src/nn/asr_model.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";

function stats(x: Float32Array) {
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (const v of x) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean), min, max, n: x.length };
}

Deno.test("init: distributions of CONMAMBA_SPEC.md 6 on conmamba_large_ctc, seeded", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const d = 256, di = 512, r = 16;
    const model = new ConMambaCtc(be, { dModel: d, dFfn: 1024, numEncoderLayers: 18, vocab: 31 });
    initialize(model, 3402);
    const p = new Map([...model.namedParameters()].map(([n, t]) => [n, t.toArray()]));
    const L = "Transformer.encoder.layers.";
    const problems: string[] = [];
    const normal = (name: string, std: number) => {
      const s = stats(p.get(name)!), tol = 4 / Math.sqrt(2 * s.n) + 0.005;
      if (!(Math.abs(s.std / std - 1) <= tol && Math.abs(s.mean) <= 4 * std / Math.sqrt(s.n))) {
        problems.push(`${name}: mean ${s.mean} std ${s.std}, expected N(0, ${std}^2)`);
      }
    };
    const unif = (name: string, a: number) => {
      const s = stats(p.get(name)!), std = a / Math.sqrt(3), tol = 4 / Math.sqrt(s.n) + 0.01;
      if (!(s.min >= -a && s.max <= a && Math.abs(s.std / std - 1) <= tol)) {
        problems.push(`${name}: [${s.min}, ${s.max}] std ${s.std}, expected U(+-${a})`);
      }
    };
    const constant = (name: string, v: number) => {
      if (!p.get(name)!.every((x) => x === v)) problems.push(`${name}: not all ${v}`);
    };
    const xav = (name: string, fanIn: number, fanOut: number) =>
      normal(name, Math.sqrt(2 / (fanIn + fanOut)));
    unif("CNN.convblock_0.convs.conv_0.conv.weight", 1 / 3);
    unif("CNN.convblock_1.convs.conv_0.conv.weight", 1 / 24);
    unif("CNN.convblock_1.convs.conv_0.conv.bias", 1 / 24);
    constant("CNN.convblock_0.convs.norm_0.norm.weight", 1);
    constant("CNN.convblock_0.convs.norm_0.norm.bias", 0);
    unif("ctc_lin.w.weight", 1 / 16);
    xav("Transformer.custom_src_module.layers.0.w.weight", 640, d);
    unif("Transformer.custom_src_module.layers.0.w.bias", 1 / Math.sqrt(640));
    for (const i of [0, 17]) {
      xav(`${L}${i}.mamba.in_proj.weight`, d, 2 * di);
      xav(`${L}${i}.mamba.out_proj.weight`, di, d);
      xav(`${L}${i}.mamba.x_proj.weight`, di, r + 32);
      xav(`${L}${i}.mamba.x_proj_b.weight`, di, r + 32);
      xav(`${L}${i}.mamba.dt_proj.weight`, r, di);
      xav(`${L}${i}.mamba.dt_proj_b.weight`, r, di);
      xav(`${L}${i}.mamba.A_log`, 16, di); // G1: ln(1..16) is overwritten
      xav(`${L}${i}.mamba.A_b_log`, 16, di);
      xav(`${L}${i}.mamba.conv1d.weight`, 4, 4 * di);
      unif(`${L}${i}.mamba.conv1d.bias`, 0.5);
      constant(`${L}${i}.mamba.D`, 1);
      constant(`${L}${i}.mamba.D_b`, 1);
      unif(`${L}${i}.mamba.dt_proj_b.bias`, 1 / Math.sqrt(r)); // PyTorch default (G1)
      // Forward dt bias: softplus(bias) log-uniform on [1e-3, 0.1]: mean of ln dt = ln(1e-2).
      const dt = Array.from(p.get(`${L}${i}.mamba.dt_proj.bias`)!, (b) => Math.log1p(Math.exp(b)));
      const logs = dt.map(Math.log), m = logs.reduce((a, b) => a + b, 0) / logs.length;
      const sd = Math.sqrt(logs.reduce((a, b) => a + (b - m) ** 2, 0) / logs.length);
      const want = Math.log(100) / Math.sqrt(3) / 2; // (ln .1 - ln .001) / sqrt(12)
      if (
        !(Math.min(...dt) >= 1e-3 * 0.999 && Math.max(...dt) <= 0.1 * 1.001 &&
          Math.abs(m - Math.log(1e-2)) < 0.2 && Math.abs(sd / want - 1) < 0.1)
      ) problems.push(`dt_proj.bias layer ${i}: softplus range/mean/std wrong (${m}, ${sd})`);
      xav(`${L}${i}.convolution_module.bottleneck.0.weight`, d, 2 * d);
      unif(`${L}${i}.convolution_module.bottleneck.0.bias`, 1 / Math.sqrt(d));
      xav(`${L}${i}.convolution_module.conv.weight`, 31, 31 * d);
      unif(`${L}${i}.convolution_module.conv.bias`, 1 / Math.sqrt(31));
      xav(`${L}${i}.convolution_module.after_conv.2.weight`, d, d);
      xav(`${L}${i}.ffn_module1.1.ffn.0.weight`, d, 1024);
      unif(`${L}${i}.ffn_module1.1.ffn.0.bias`, 1 / Math.sqrt(d));
      xav(`${L}${i}.ffn_module2.1.ffn.3.weight`, 1024, d);
      constant(`${L}${i}.norm2.norm.weight`, 1);
      constant(`${L}${i}.ffn_module1.0.bias`, 0);
    }
    if (problems.length) throw new Error(problems.join("\n"));
    // Seeded: the same seed gives the same bits, another seed other values.
    const again = new ConMambaCtc(be, { dModel: 32, dFfn: 64, numEncoderLayers: 1, vocab: 31 });
    const other = new ConMambaCtc(be, { dModel: 32, dFfn: 64, numEncoderLayers: 1, vocab: 31 });
    initialize(again, 7);
    const a1 = again.parameters().map((t) => t.toArray());
    initialize(again, 7);
    initialize(other, 8);
    again.parameters().forEach((t, i) => {
      if (!t.toArray().every((v, j) => v === a1[i][j])) throw new Error("init not repeatable");
    });
    if (other.parameters()[0].toArray().every((v, j) => v === a1[0][j])) {
      throw new Error("seed ignored");
    }
    for (const m of [model, again, other]) m.free();
    if (new Rng(1).uniform() === new Rng(2).uniform()) throw new Error("rng seeds collide");
  } finally {
    be.close();
  }
});

Deno.test("init: the S2S pieces of CONMAMBA_SPEC.md 6 on conmamba_small (decoder, embedding, heads)", async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const d = 144, f = 1024, v = 5000;
    const model = new AsrModel(be, {
      encoder: "conmamba",
      decoder: "transformer",
      dModel: d,
      dFfn: f,
      numEncoderLayers: 1,
      numDecoderLayers: 1,
      heads: 4,
      vocab: v,
    });
    initialize(model, 7);
    const p = new Map(model.namedParameters());
    const get = (n: string) => p.get(n)!.toArray();
    const dec = "Transformer.decoder.layers.0.";
    // nn.MultiheadAttention: in_proj_bias and out_proj.bias are exactly 0.
    for (const a of ["self_attn", "multihead_attn"]) {
      for (const n of [`${a}.att.in_proj_bias`, `${a}.att.out_proj.bias`]) {
        if (get(dec + n).some((x) => x !== 0)) throw new Error(`${n} is not all 0`);
      }
      // Xavier-normal: in_proj (3d, d) std sqrt(2 / 4d); out_proj (d, d) sqrt(2 / 2d).
      const sIn = stats(get(dec + `${a}.att.in_proj_weight`)).std;
      const sOut = stats(get(dec + `${a}.att.out_proj.weight`)).std;
      if (Math.abs(sIn / Math.sqrt(2 / (4 * d)) - 1) > 0.03) {
        throw new Error(`${a} in_proj std ${sIn}`);
      }
      if (Math.abs(sOut / Math.sqrt(2 / (2 * d)) - 1) > 0.05) {
        throw new Error(`${a} out std ${sOut}`);
      }
    }
    // Embedding N(0, 2 / (V + d)) (inside TransformerASR); seq_lin U(+-1/sqrt(d)) (outside).
    const emb = stats(get("Transformer.custom_tgt_module.layers.0.emb.Embedding.weight"));
    if (Math.abs(emb.std / Math.sqrt(2 / (v + d)) - 1) > 0.02) {
      throw new Error(`emb std ${emb.std}`);
    }
    const seq = stats(get("seq_lin.w.weight"));
    if (!(seq.max <= 1 / Math.sqrt(d) && seq.min >= -1 / Math.sqrt(d))) throw new Error("seq_lin");
    if (Math.abs(seq.std / (1 / Math.sqrt(3 * d)) - 1) > 0.02) {
      throw new Error(`seq std ${seq.std}`);
    }
    model.free();
  } finally {
    be.close();
  }
});
