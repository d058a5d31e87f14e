/**
 * `fbank <exp> <audio.flac> --out X.npy [--speed 95|100|105]`: one file's features [T, n_mels]
 * (float32, before normalisation) with the experiment's settings, as the fbank stage stores them.
 */
import { Fbank, fbankSettings } from "../audio/fbank.ts";
import { readFlac } from "../audio/flac.ts";
import { SpeedPerturb } from "../audio/speed_perturb.ts";
import { formatNpyF32 } from "../io/npy.ts";
import { UserError } from "../pipeline/errors.ts";
import { writeFileAtomic } from "../pipeline/fs_util.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { WasmBackend } from "../tensor/wasm_backend.ts";
import { print } from "./format.ts";
import type { Product } from "./product.ts";

export async function fbankVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  audio: string,
  rest: string[],
  opts: { out: string; speed?: string },
): Promise<number> {
  const config = product.loadExperiment(experiment, product.parseOverrides(rest)) as unknown as {
    sample_rate: number;
    n_fft: number;
    win_length: number;
    n_mels: number;
  };
  const speed = Number(opts.speed ?? 100);
  if (![95, 100, 105].includes(speed)) {
    throw new UserError(`--speed: expected 95, 100 or 105, got "${opts.speed}"`);
  }
  const settings = fbankSettings(config);
  const wav = await readFlac(audio);
  if (wav.sampleRate !== settings.sampleRate || wav.channels.length !== 1) {
    throw new UserError(
      `${audio}: expected mono ${settings.sampleRate} Hz audio, got ${wav.channels.length} ` +
        `channel(s) at ${wav.sampleRate} Hz`,
    );
  }
  const backend = await WasmBackend.create({ threads: defaultThreads() });
  try {
    const sp = new SpeedPerturb(backend, settings.sampleRate);
    const fb = new Fbank(backend, settings);
    const feats = fb.compute(sp.apply(wav.channels[0], speed));
    const T = feats.length / settings.nMels;
    await writeFileAtomic(opts.out, formatNpyF32([T, settings.nMels], feats));
    print(
      `${opts.out}: [${T}, ${settings.nMels}] float32 (n_fft ${settings.nFft}, window ` +
        `${settings.winLength}, speed ${speed})`,
    );
  } finally {
    backend.close();
  }
  return 0;
}
