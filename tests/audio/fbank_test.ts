/**
 * Filterbank features: the spec's sanity constants, the kernel against the float64 reference,
 * and against the reference system's own output (SpeechBrain Fbank on two espeak-ng files, copied
 * from shared/reference/golden/fbank into tests/fixtures/golden/fbank).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readFlac } from "../../src/audio/flac.ts";
import {
  Fbank,
  type FbankSettings,
  fbankSettings,
  hammingWindow,
  melCentres,
} from "../../src/audio/fbank.ts";
import { readNpy } from "../../src/io/npy.ts";
import { WasmBackend } from "../../src/tensor/wasm_backend.ts";
import { fbankReference } from "./fbank_reference.ts";
import { relL2 } from "../fixtures/compare.ts";

const GOLDEN = fileURLToPath(new URL("../fixtures/golden/fbank/", import.meta.url));

/** The three settings of the recipe: S2S small, S2S large, CTC (window 400 in an FFT of 512). */
const SETTINGS: Record<string, FbankSettings> = {
  S2S_small_nfft400_win25: fbankSettings({
    sample_rate: 16000,
    n_fft: 400,
    win_length: 25,
    n_mels: 80,
  }),
  S2S_large_nfft512_win32: fbankSettings({
    sample_rate: 16000,
    n_fft: 512,
    win_length: 32,
    n_mels: 80,
  }),
  CTC_nfft512_win25: fbankSettings({ sample_rate: 16000, n_fft: 512, win_length: 25, n_mels: 80 }),
};

const be = await WasmBackend.create({ threads: 2, minWorkPerThread: 1 });
const be1 = await WasmBackend.create({ threads: 1 });
globalThis.addEventListener("unload", () => {
  be.close();
  be1.close();
});

Deno.test("fbank constants match the spec's sanity values (Appendix A)", () => {
  const s = SETTINGS.S2S_small_nfft400_win25;
  const { centre, halfWidth } = melCentres(s);
  const near = (x: number, y: number, tol: number) =>
    assert.ok(Math.abs(x - y) < tol, `${x} vs ${y}`);
  near(2595 * Math.log10(1 + 8000 / 700), 2840.0230, 1e-4);
  for (
    const [i, c, b] of [[0, 22.120, 22.120], [1, 44.939, 22.819], [39, 1729.702, 74.427], [
      79,
      7733.501,
      258.336,
    ]]
  ) {
    near(centre[i], c, 1e-3);
    near(halfWidth[i], b, 1e-3);
  }
  const w = hammingWindow(400, 400);
  near(w[0], 0.08, 1e-12);
  near(w[1], 0.080057, 1e-6);
  near(w[200], 1.0, 1e-12);
  near(w[399], 0.080057, 1e-6);
  // CTC: 400-sample window centred in 512, 56 zeros each side.
  const c = hammingWindow(400, 512);
  assert.equal(c[55], 0);
  near(c[56], 0.08, 1e-12);
  assert.equal(c[456], 0);
});

Deno.test("fbank kernel vs float64 reference on noise and tones: rel L2 <= 1e-4 (goal), got ~1e-7", () => {
  // Noise plus two tones, 0.6 s, with a quiet stretch so the top_db floor is reached.
  const n = 9600;
  let x = 12345;
  const wav = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const noise = (x / 2 ** 32 - 0.5) * 0.01;
    const tone = 0.3 * Math.sin(2 * Math.PI * 440 * i / 16000) +
      0.1 * Math.sin(2 * Math.PI * 3100 * i / 16000);
    wav[i] = Math.fround((i > 4000 && i < 5500 ? 1e-6 : 1) * (tone + noise));
  }
  for (const [name, s] of Object.entries(SETTINGS)) {
    const fb = new Fbank(be, s);
    const got = fb.compute(wav);
    fb.free();
    const want = fbankReference(wav, s);
    assert.equal(got.length, want.length);
    // The kernel computes in double and rounds once to float32 (dB values up to ~60): the
    // difference is the float32 rounding, ~1e-8 relative; 1e-4 is the goal.
    const err = relL2(got, want);
    assert.ok(err <= 1e-6, `${name}: rel L2 ${err}`);
  }
});

for (const utt of ["utt1_en-us_3s", "utt2_en-gb-f3_6s"]) {
  Deno.test(`fbank vs SpeechBrain's own output (${utt}): max |diff| <= 5e-3 dB, floor included`, async () => {
    const flac = await readFlac(`${GOLDEN}${utt}.flac`);
    const wavGolden = await readNpy(`${GOLDEN}${utt}_wav.npy`);
    assert.deepEqual(flac.channels[0], wavGolden.data, "our FLAC decode equals soundfile's");
    for (const [name, s] of Object.entries(SETTINGS)) {
      const golden = await readNpy(`${GOLDEN}${utt}_${name}.npy`);
      const fb = new Fbank(be, s);
      const got = fb.compute(flac.channels[0]);
      fb.free();
      assert.deepEqual(golden.shape, [1, got.length / 80, 80]);
      let worst = 0, floorHits = 0;
      let gmax = -Infinity;
      for (const v of golden.data as Float32Array) gmax = Math.max(gmax, v);
      for (let i = 0; i < got.length; i++) {
        const g = (golden.data as Float32Array)[i];
        worst = Math.max(worst, Math.abs(got[i] - g));
        if (g === Math.fround(gmax - 80)) floorHits++;
      }
      // The golden README's tolerance: the float32 reference itself differs from a float64
      // rerun by up to 7.6e-4 dB; 5e-3 dB leaves room for another FFT's rounding.
      assert.ok(worst <= 5e-3, `${name}: max |diff| ${worst} dB`);
      assert.ok(floorHits > 0.05 * got.length, `${name}: only ${floorHits} values on the floor`);
    }
  });
}

Deno.test("fbank: 1 thread and 2 threads give the same bits", async () => {
  const flac = await readFlac(`${GOLDEN}utt2_en-gb-f3_6s.flac`);
  for (const s of Object.values(SETTINGS)) {
    const a = new Fbank(be, s), b = new Fbank(be1, s);
    assert.deepEqual(a.compute(flac.channels[0]), b.compute(flac.channels[0]));
    a.free();
    b.free();
  }
});

Deno.test("fbank: settings the kernel cannot do are refused with the reason", () => {
  assert.throws(
    () => new Fbank(be, { ...SETTINGS.CTC_nfft512_win25, nFft: 514 }),
    /n_fft 514 must be even, <= 1024, n_fft\/2 a product of 2, 3, 5/,
  );
  assert.throws(
    () => new Fbank(be, { ...SETTINGS.CTC_nfft512_win25, winLength: 600 }),
    /longer than n_fft/,
  );
});
