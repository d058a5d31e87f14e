/**
 * FLAC decoding, written from RFC 9639. `decodeFlacPcm` gives the integer samples (exact for every
 * bit depth up to 32); `decodeFlac` / `readFlac` give Float32Array channels scaled the way
 * torchaudio reads FLAC: int / 2^(bps-1), in [-1, 1). The STREAMINFO MD5 of the decoded samples
 * is verified when the encoder stored one; every frame's CRC-8 and CRC-16 always are.
 */
import { createHash } from "node:crypto";
import { BitReader, OutOfDataError } from "./bit_reader.ts";
import { FlacError } from "./flac_error.ts";
import {
  emptyStats,
  type FlacStats,
  FrameError,
  readFrameBody,
  readFrameHeader,
} from "./flac_frame.ts";
import { type FlacStreamInfo, parseFlacHeader } from "./flac_stream_info.ts";

export { FlacError } from "./flac_error.ts";
export type { FlacStats } from "./flac_frame.ts";
export { flacInfo, type FlacStreamInfo } from "./flac_stream_info.ts";

export interface FlacPcm {
  info: FlacStreamInfo;
  /** One array of integer samples per channel, each of length `length`. */
  channels: Int32Array[];
  length: number;
  /** Coding tools met while decoding. */
  stats: FlacStats;
}

export interface FlacAudio {
  info: FlacStreamInfo;
  sampleRate: number;
  /** One array per channel, values int / 2^(bps-1) in [-1, 1). */
  channels: Float32Array[];
}

export interface DecodeOptions {
  /** Names the source in errors (default "<memory>"). */
  name?: string;
  /** Verify the STREAMINFO MD5 when present (default true). */
  verifyMd5?: boolean;
}

/** Little-endian interleaved bytes of one block, as the STREAMINFO MD5 covers them. */
function md5Bytes(chs: Float64Array[], n: number, bytesPerSample: number): Uint8Array {
  const out = new Uint8Array(n * chs.length * bytesPerSample);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < chs.length; c++) {
      const v = chs[c][i]; // fits 32 bits after decorrelation
      for (let b = 0; b < bytesPerSample; b++) out[o++] = (v >> (8 * b)) & 0xff;
    }
  }
  return out;
}

/** Decodes a whole FLAC stream to integer samples. */
export function decodeFlacPcm(data: Uint8Array, options: DecodeOptions = {}): FlacPcm {
  const name = options.name ?? "<memory>";
  const { info, framesStart } = parseFlacHeader(name, data);
  const bps = info.bitsPerSample;
  const nch = info.channels;
  const stats = emptyStats();
  const md5 = info.md5 !== null && options.verifyMd5 !== false ? createHash("md5") : null;
  const bytesPerSample = Math.ceil(bps / 8);
  const lo = -(2 ** (bps - 1)), hi = 2 ** (bps - 1) - 1;

  let capacity = info.totalSamples > 0 ? info.totalSamples : 1 << 16;
  let out = Array.from({ length: nch }, () => new Int32Array(capacity));
  const work = Array.from({ length: nch }, () => new Float64Array(65535));
  let length = 0;
  let frame = 0;
  let variable: boolean | null = null;
  const r = new BitReader(data, framesStart);

  while (r.pos < data.length && !(info.totalSamples > 0 && length >= info.totalSamples)) {
    const frameStart = r.pos;
    const where = () => `frame ${frame} (byte ${frameStart})`;
    try {
      const h = readFrameHeader(r);
      if (h.channels !== nch) {
        throw new FrameError(`has ${h.channels} channels, STREAMINFO says ${nch}`);
      }
      if (h.bitsPerSample !== 0 && h.bitsPerSample !== bps) {
        throw new FrameError(`has ${h.bitsPerSample} bits per sample, STREAMINFO says ${bps}`);
      }
      if (h.sampleRate !== 0 && h.sampleRate !== info.sampleRate) {
        throw new FrameError(`has sample rate ${h.sampleRate}, STREAMINFO says ${info.sampleRate}`);
      }
      variable ??= h.variableBlockSize;
      if (h.variableBlockSize !== variable) throw new FrameError("changes the blocking strategy");
      // The coded number is the frame index (fixed block size) or the first sample's index.
      const expected = variable ? length : frame;
      if (h.number !== expected) {
        throw new FrameError(`is numbered ${h.number}, expected ${expected} (lost frames?)`);
      }
      readFrameBody(r, frameStart, h, bps, work, stats);
      const n = h.blockSize;
      for (let c = 0; c < nch; c++) {
        const w = work[c];
        for (let i = 0; i < n; i++) {
          if (w[i] < lo || w[i] > hi) {
            throw new FrameError(`decodes to a sample out of ${bps}-bit range`);
          }
        }
      }
      if (length + n > capacity) {
        if (info.totalSamples > 0) {
          throw new FrameError(`holds more samples than the ${info.totalSamples} of STREAMINFO`);
        }
        capacity = Math.max(capacity * 2, length + n);
        out = out.map((ch) => {
          const grown = new Int32Array(capacity);
          grown.set(ch.subarray(0, length));
          return grown;
        });
      }
      for (let c = 0; c < nch; c++) out[c].set(work[c].subarray(0, n), length);
      md5?.update(md5Bytes(work, n, bytesPerSample));
      length += n;
      frame++;
    } catch (e) {
      if (e instanceof OutOfDataError) {
        throw new FlacError(name, `truncated: the file ends inside ${where()}`);
      }
      if (e instanceof FrameError) throw new FlacError(name, `${where()}: ${e.message}`);
      throw e;
    }
  }
  if (info.totalSamples > 0 && length < info.totalSamples) {
    throw new FlacError(
      name,
      `truncated: ${length} of the ${info.totalSamples} samples of STREAMINFO decoded`,
    );
  }
  if (md5 !== null && length === info.totalSamples) {
    const got = md5.digest("hex");
    if (got !== info.md5) {
      throw new FlacError(
        name,
        `MD5 of the decoded audio ${got} differs from STREAMINFO ${info.md5}`,
      );
    }
  }
  return { info, channels: out.map((ch) => ch.subarray(0, length)), length, stats };
}

/** Decodes a FLAC stream to float channels, int / 2^(bps-1). */
export function decodeFlac(data: Uint8Array, options: DecodeOptions = {}): FlacAudio {
  const pcm = decodeFlacPcm(data, options);
  const scale = 1 / 2 ** (pcm.info.bitsPerSample - 1);
  const channels = pcm.channels.map((ch) => {
    const f = new Float32Array(ch.length);
    for (let i = 0; i < ch.length; i++) f[i] = ch[i] * scale;
    return f;
  });
  return { info: pcm.info, sampleRate: pcm.info.sampleRate, channels };
}

/** Reads and decodes a FLAC file; errors name `path`. */
export async function readFlac(
  path: string,
  options: Omit<DecodeOptions, "name"> = {},
): Promise<FlacAudio> {
  return decodeFlac(await Deno.readFile(path), { ...options, name: path });
}
