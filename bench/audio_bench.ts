/**
 * Audio front end, in seconds of audio per second on one core ("x real time"), each against a
 * baseline measured in the same run:
 *   fbank       our Wasm kernel vs the same computation in NumPy (pocketfft rfft, mel matmul)
 *   FLAC        our decoder vs the reference `flac -d` (libFLAC, C), both on one 60 s file
 *   resampling  our speed-perturbation kernel vs `sox ... rate` to 15.2 kHz
 * NumPy, flac and sox are optional: a missing baseline prints n/a.
 */
import { join } from "node:path";
import { decodeFlac } from "../src/audio/flac.ts";
import { Fbank, fbankSettings, hammingWindow, melWeights } from "../src/audio/fbank.ts";
import { SpeedPerturb } from "../src/audio/speed_perturb.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";
import type { Row } from "./pipeline_bench.ts";
import { bestSeconds } from "./timing.ts";

const SECONDS = 60;

const best = (fn: () => void) => bestSeconds(fn);

async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<string | null> {
  try {
    const p = new Deno.Command(cmd, {
      args,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    if (stdin) {
      const w = p.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    }
    const out = await p.output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null;
  }
}

/** Speech-like test audio: tones with a moving formant and noise, 16 kHz. */
function signal(): Float32Array {
  let x = 1;
  return Float32Array.from({ length: 16000 * SECONDS }, (_, i) => {
    x = (x * 1664525 + 1013904223) >>> 0;
    const f = 300 + 200 * Math.sin(i / 8000);
    return 0.3 * Math.sin((2 * Math.PI * f * i) / 16000) + 0.02 * (x / 2 ** 32 - 0.5);
  });
}

const NUMPY_FBANK = `
import sys, time, numpy as np
d = np.frombuffer(sys.stdin.buffer.read(), dtype=np.float32)
n_fft, hop, n_mels = int(sys.argv[1]), 160, 80
win = np.fromfile(sys.argv[2], dtype=np.float64)
mel = np.fromfile(sys.argv[3], dtype=np.float64).reshape(n_mels, n_fft // 2 + 1).T
def fbank(x):
    p = np.pad(x.astype(np.float64), n_fft // 2)
    T = 1 + len(x) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(T)[:, None]
    spec = np.abs(np.fft.rfft(p[idx] * win, axis=1)) ** 2
    db = 10 * np.log10(np.maximum(spec @ mel, 1e-10))
    return np.maximum(db, db.max() - 80)
fbank(d)
t = min((lambda t0: (fbank(d), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print(t)
`;

export async function audioBench(): Promise<Row[]> {
  const rows: Row[] = [];
  const be = await WasmBackend.create({ threads: 1 });
  const wav = signal();
  const rt = (t: number | null) => (t === null ? "n/a" : `${(SECONDS / t).toFixed(0)}x`);
  const ratio = (ours: number, base: number | null) =>
    base === null ? "n/a" : `${(base / ours).toFixed(2)}x`;

  for (const [nFft, win] of [[400, 25], [512, 32]]) {
    const s = fbankSettings({ sample_rate: 16000, n_fft: nFft, win_length: win, n_mels: 80 });
    const fb = new Fbank(be, s);
    const ours = best(() => fb.compute(wav));
    fb.free();
    const mel = new Float64Array(80 * (nFft / 2 + 1));
    melWeights(s).forEach((w, i) => mel.set(w, i * w.length));
    const tmp = await Deno.makeTempDir({ prefix: "cm-bench-np-" });
    await Deno.writeFile(join(tmp, "win"), new Uint8Array(hammingWindow(s.winLength, nFft).buffer));
    await Deno.writeFile(join(tmp, "mel"), new Uint8Array(mel.buffer));
    const np = await run(
      "python3",
      ["-c", NUMPY_FBANK, String(nFft), join(tmp, "win"), join(tmp, "mel")],
      new Uint8Array(wav.buffer),
    );
    await Deno.remove(tmp, { recursive: true });
    const base = np === null ? null : Number(np.trim());
    rows.push({
      what: `fbank n_fft ${nFft}, window ${s.winLength} (vs NumPy float64)`,
      ours: rt(ours),
      baseline: rt(base),
      ratio: ratio(ours, base),
    });
  }

  const dir = await Deno.makeTempDir({ prefix: "cm-bench-audio-" });
  try {
    const pcm = new Int16Array(wav.length);
    for (let i = 0; i < wav.length; i++) pcm[i] = Math.round(wav[i] * 32767);
    const raw = join(dir, "a.raw"), flacPath = join(dir, "a.flac");
    await Deno.writeFile(raw, new Uint8Array(pcm.buffer));
    const enc = await run("flac", [
      "-8",
      "-f",
      "--silent",
      "--force-raw-format",
      "--endian=little",
      "--sign=signed",
      "--channels=1",
      "--bps=16",
      "--sample-rate=16000",
      "-o",
      flacPath,
      raw,
    ]);
    if (enc !== null) {
      const bytes = await Deno.readFile(flacPath);
      const ours = best(() => decodeFlac(bytes));
      let base: number | null = Infinity;
      for (let i = 0; i < 5 && base !== null; i++) {
        const t0 = performance.now();
        const ok = await run("flac", ["-d", "-c", "--silent", "-f", flacPath]);
        base = ok === null ? null : Math.min(base, (performance.now() - t0) / 1000);
      }
      rows.push({
        what: "FLAC decode, 16-bit mono -8 (vs flac -d, incl. process start)",
        ours: rt(ours),
        baseline: rt(base),
        ratio: ratio(ours, base),
      });
    }
    const sp = new SpeedPerturb(be);
    const ours = best(() => sp.apply(wav, 95));
    sp.free();
    const wavPath = join(dir, "a.wav");
    let base: number | null = null;
    if (
      (await run("sox", [
        "-t",
        "raw",
        "-r",
        "16000",
        "-e",
        "signed",
        "-b",
        "16",
        "-c",
        "1",
        raw,
        wavPath,
      ])) !== null
    ) {
      base = Infinity;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await run("sox", [wavPath, "-t", "raw", "-", "rate", "-h", "15200"]);
        base = Math.min(base, (performance.now() - t0) / 1000);
      }
    }
    rows.push({
      what: "speed perturbation 95 % (vs sox rate -h, incl. process start)",
      ours: rt(ours),
      baseline: rt(base),
      ratio: ratio(ours, base),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    be.close();
  }
  return rows;
}
