/**
 * The FLAC stream header (RFC 9639 §8): the "fLaC" marker, then metadata blocks, the first of
 * which is STREAMINFO. `flacInfo` reads only this header, which is all a duration needs.
 */
import { BitReader, OutOfDataError } from "./bit_reader.ts";
import { FlacError } from "./flac_error.ts";

export interface FlacStreamInfo {
  minBlockSize: number;
  maxBlockSize: number;
  sampleRate: number; // Hz
  channels: number; // 1..8
  bitsPerSample: number; // 4..32
  /** Samples per channel; 0 when the encoder did not know it. */
  totalSamples: number;
  /** MD5 of the decoded samples as hex; null when the encoder left it all zero. */
  md5: string | null;
  /** Seconds of audio: totalSamples / sampleRate (0 when totalSamples is unknown). */
  duration: number;
}

export interface FlacHeader {
  info: FlacStreamInfo;
  /** Byte offset of the first audio frame (after the last metadata block). */
  framesStart: number;
}

const STREAMINFO_LENGTH = 34;

/** Length of an ID3v2 tag at the start of data (which RFC 9639 §8 lets a decoder skip), else 0. */
function id3Length(data: Uint8Array): number {
  if (data.length < 10 || data[0] !== 0x49 || data[1] !== 0x44 || data[2] !== 0x33) return 0;
  const size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]; // syncsafe
  return 10 + size + (data[5] & 0x10 ? 10 : 0); // flag 0x10: a footer follows
}

function parseStreamInfo(file: string, data: Uint8Array, at: number): FlacStreamInfo {
  const r = new BitReader(data, at);
  const minBlockSize = r.readBits(16);
  const maxBlockSize = r.readBits(16);
  r.readBits(24); // minimum frame size
  r.readBits(24); // maximum frame size
  const sampleRate = r.readBits(20);
  const channels = r.readBits(3) + 1;
  const bitsPerSample = r.readBits(5) + 1;
  const totalSamples = r.readBits(36);
  let md5 = "";
  for (let i = 0; i < 16; i++) md5 += data[r.pos + i].toString(16).padStart(2, "0");
  if (sampleRate === 0) throw new FlacError(file, "STREAMINFO gives a sample rate of 0");
  if (bitsPerSample < 4) {
    throw new FlacError(file, `STREAMINFO gives ${bitsPerSample} bits per sample (minimum 4)`);
  }
  return {
    minBlockSize,
    maxBlockSize,
    sampleRate,
    channels,
    bitsPerSample,
    totalSamples,
    md5: /^0+$/.test(md5) ? null : md5,
    duration: totalSamples / sampleRate,
  };
}

/**
 * Parses the header of a FLAC stream held in `data` (the whole file, or at least its head when
 * `needFrames` is false). `file` only names the source in errors.
 */
export function parseFlacHeader(file: string, data: Uint8Array, needFrames = true): FlacHeader {
  let at = id3Length(data);
  const marker = data.subarray(at, at + 4);
  if (String.fromCharCode(...marker) !== "fLaC") {
    throw new FlacError(file, `not a FLAC file (no "fLaC" marker at byte ${at})`);
  }
  at += 4;
  try {
    let info: FlacStreamInfo | null = null;
    for (;;) {
      const r = new BitReader(data, at);
      const last = r.readBits(1) === 1;
      const type = r.readBits(7);
      const length = r.readBits(24);
      at += 4;
      if (info === null) {
        if (type !== 0 || length !== STREAMINFO_LENGTH) {
          throw new FlacError(file, "the first metadata block is not a 34-byte STREAMINFO");
        }
        if (at + length > data.length) throw new OutOfDataError(data.length);
        info = parseStreamInfo(file, data, at);
        if (!needFrames) return { info, framesStart: -1 };
      } else if (type === 127) {
        throw new FlacError(file, `invalid metadata block type 127 at byte ${at - 4}`);
      }
      at += length;
      if (last) {
        if (at > data.length) throw new OutOfDataError(data.length);
        return { info, framesStart: at };
      }
    }
  } catch (e) {
    if (e instanceof OutOfDataError) {
      throw new FlacError(file, `truncated: the file ends inside its metadata (byte ${e.at})`);
    }
    throw e;
  }
}

/** Reads only the head of a FLAC file and returns its STREAMINFO (for durations). */
export async function flacInfo(path: string): Promise<FlacStreamInfo> {
  using f = await Deno.open(path, { read: true });
  let head = new Uint8Array(0);
  let want = 42; // "fLaC" + block header + STREAMINFO
  for (;;) {
    const buf = new Uint8Array(want - head.length);
    let filled = 0;
    while (filled < buf.length) {
      const n = await f.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    const grown = new Uint8Array(head.length + filled);
    grown.set(head);
    grown.set(buf.subarray(0, filled), head.length);
    head = grown;
    const id3 = id3Length(head);
    // An ID3v2 tag in front of the stream moves the header; read on until it is in.
    if (id3 > 0 && head.length < id3 + 42 && filled === buf.length) {
      want = id3 + 42;
      continue;
    }
    return parseFlacHeader(path, head, false).info;
  }
}
