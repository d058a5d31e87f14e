/**
 * One FLAC frame (RFC 9639 §9): header with CRC-8, one subframe per channel (CONSTANT, VERBATIM,
 * FIXED, LPC; wasted bits; Rice / Rice2 partitioned residuals), stereo decorrelation, CRC-16.
 * Problems are thrown as FrameError; the stream decoder adds the file name and frame index.
 */
import { BitReader } from "./bit_reader.ts";
import { crc16, crc8 } from "./crc.ts";

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Channel assignment codes 8..10 (RFC 9639 §9.1.3); 0..7 mean independent channels. */
export const LEFT_SIDE = 8, SIDE_RIGHT = 9, MID_SIDE = 10;

export interface FrameHeader {
  variableBlockSize: boolean;
  blockSize: number;
  /** Hz, or 0: "as in STREAMINFO". */
  sampleRate: number;
  channels: number;
  /** 0..7 independent (value + 1 channels), or LEFT_SIDE / SIDE_RIGHT / MID_SIDE. */
  channelAssignment: number;
  /** 0: "as in STREAMINFO". */
  bitsPerSample: number;
  /** Frame number (fixed block size) or number of the first sample (variable block size). */
  number: number;
}

/** Counts of the coding tools met while decoding (tests use them to prove coverage). */
export interface FlacStats {
  constant: number;
  verbatim: number;
  fixed: number;
  lpc: number;
  wastedBits: number;
  ricePartitions: number;
  rice2Partitions: number;
  escapedPartitions: number;
  /** Frames per channel assignment code (0..10). */
  assignments: number[];
}

export function emptyStats(): FlacStats {
  return {
    constant: 0,
    verbatim: 0,
    fixed: 0,
    lpc: 0,
    wastedBits: 0,
    ricePartitions: 0,
    rice2Partitions: 0,
    escapedPartitions: 0,
    assignments: new Array(11).fill(0),
  };
}

const SAMPLE_RATES = [
  0,
  88200,
  176400,
  192000,
  8000,
  16000,
  22050,
  24000,
  32000,
  44100,
  48000,
  96000,
];
const SAMPLE_SIZES = [0, 8, 12, -1, 16, 20, 24, 32]; // -1: reserved

/** The UTF-8-like coded frame/sample number (RFC 9639 §9.1.5). */
function readCodedNumber(r: BitReader): number {
  const first = r.readBits(8);
  if (first < 0x80) return first;
  const ones = Math.clz32(~(first << 24)); // leading 1 bits of the first byte
  if (ones < 2 || ones > 7) throw new FrameError("invalid coded frame number");
  let value = ones === 7 ? 0 : first & (0x7f >> ones);
  for (let i = 1; i < ones; i++) {
    const next = r.readBits(8);
    if ((next & 0xc0) !== 0x80) throw new FrameError("invalid coded frame number");
    value = value * 64 + (next & 0x3f);
  }
  return value;
}

/** Reads a frame header starting at r.pos (byte aligned) and checks its CRC-8. */
export function readFrameHeader(r: BitReader): FrameHeader {
  const start = r.pos;
  if (r.readBits(15) !== 0x7ffc) throw new FrameError("no frame sync code");
  const variableBlockSize = r.readBits(1) === 1;
  const blockCode = r.readBits(4);
  const rateCode = r.readBits(4);
  const channelAssignment = r.readBits(4);
  const sizeCode = r.readBits(3);
  if (r.readBits(1) !== 0) throw new FrameError("reserved header bit is set");
  const number = readCodedNumber(r);

  let blockSize: number;
  if (blockCode === 0) throw new FrameError("reserved block size code 0");
  else if (blockCode === 1) blockSize = 192;
  else if (blockCode <= 5) blockSize = 576 << (blockCode - 2);
  else if (blockCode === 6) blockSize = r.readBits(8) + 1;
  else if (blockCode === 7) blockSize = r.readBits(16) + 1;
  else blockSize = 256 << (blockCode - 8);
  if (blockSize > 65535) throw new FrameError(`block size ${blockSize} exceeds 65535`);

  let sampleRate: number;
  if (rateCode <= 11) sampleRate = SAMPLE_RATES[rateCode];
  else if (rateCode === 12) sampleRate = r.readBits(8) * 1000;
  else if (rateCode === 13) sampleRate = r.readBits(16);
  else if (rateCode === 14) sampleRate = r.readBits(16) * 10;
  else throw new FrameError("invalid sample rate code 15");

  if (channelAssignment > MID_SIDE) {
    throw new FrameError(`reserved channel assignment ${channelAssignment}`);
  }
  const bitsPerSample = SAMPLE_SIZES[sizeCode];
  if (bitsPerSample < 0) throw new FrameError("reserved sample size code 3");

  const expected = crc8(r.data, start, r.pos);
  const stored = r.readBits(8);
  if (stored !== expected) {
    throw new FrameError(
      `bad header CRC-8 (stored 0x${hex(stored, 2)}, computed 0x${hex(expected, 2)})`,
    );
  }
  const channels = channelAssignment < LEFT_SIDE ? channelAssignment + 1 : 2;
  return {
    variableBlockSize,
    blockSize,
    sampleRate,
    channels,
    channelAssignment,
    bitsPerSample,
    number,
  };
}

function hex(v: number, digits: number): string {
  return v.toString(16).padStart(digits, "0");
}

/**
 * Residual of a FIXED or LPC subframe (RFC 9639 §9.2.7) into out[order, blockSize).
 * Residual values must fit a 32-bit signed integer; a larger one means corrupt data.
 */
function readResidual(
  r: BitReader,
  out: Float64Array,
  blockSize: number,
  order: number,
  stats: FlacStats,
): void {
  const method = r.readBits(2);
  if (method > 1) throw new FrameError(`reserved residual coding method ${method}`);
  const paramBits = method === 0 ? 4 : 5;
  const escape = method === 0 ? 15 : 31;
  const partitionOrder = r.readBits(4);
  const partitions = 1 << partitionOrder;
  const perPartition = blockSize >> partitionOrder;
  if (perPartition * partitions !== blockSize || perPartition < order) {
    throw new FrameError(
      `partition order ${partitionOrder} does not fit block size ${blockSize} and order ${order}`,
    );
  }
  let i = order;
  for (let p = 0; p < partitions; p++) {
    const end = (p + 1) * perPartition;
    const k = r.readBits(paramBits);
    if (k === escape) {
      stats.escapedPartitions++;
      const bits = r.readBits(5);
      for (; i < end; i++) out[i] = r.readSigned(bits);
      continue;
    }
    if (method === 0) stats.ricePartitions++;
    else stats.rice2Partitions++;
    const scale = 2 ** k;
    for (; i < end; i++) {
      const q = r.readUnary();
      const folded = q * scale + r.readBits(k);
      if (folded > 0xffffffff) throw new FrameError("residual value exceeds 32 bits");
      out[i] = folded % 2 === 0 ? folded / 2 : -(folded + 1) / 2; // zigzag: 0,-1,1,-2,...
    }
  }
}

/** FIXED predictors of orders 0..4 (RFC 9639 §9.2.5): residual in out[order..] becomes signal. */
function restoreFixed(s: Float64Array, n: number, order: number): void {
  switch (order) {
    case 0:
      return;
    case 1:
      for (let i = 1; i < n; i++) s[i] += s[i - 1];
      return;
    case 2:
      for (let i = 2; i < n; i++) s[i] += 2 * s[i - 1] - s[i - 2];
      return;
    case 3:
      for (let i = 3; i < n; i++) s[i] += 3 * s[i - 1] - 3 * s[i - 2] + s[i - 3];
      return;
    case 4:
      for (let i = 4; i < n; i++) {
        s[i] += 4 * s[i - 1] - 6 * s[i - 2] + 4 * s[i - 3] - s[i - 4];
      }
      return;
  }
}

/**
 * LPC (RFC 9639 §9.2.6): s[i] = residual + floor(sum_j coef[j] * s[i-1-j] / 2^shift).
 * Products of a 15-bit coefficient and a 33-bit sample, summed 32 times, stay below 2^53, so
 * float64 arithmetic is exact; division by a power of two and floor is the arithmetic shift.
 */
function restoreLpc(s: Float64Array, n: number, coefs: number[], shift: number): void {
  const order = coefs.length;
  const scale = 2 ** shift;
  for (let i = order; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < order; j++) sum += coefs[j] * s[i - 1 - j];
    s[i] += Math.floor(sum / scale);
  }
}

/** One subframe of `bps` bits per sample into out[0, blockSize). */
function readSubframe(
  r: BitReader,
  out: Float64Array,
  blockSize: number,
  bps: number,
  stats: FlacStats,
): void {
  if (r.readBits(1) !== 0) throw new FrameError("subframe padding bit is set");
  const type = r.readBits(6);
  let wasted = 0;
  if (r.readBits(1) === 1) {
    wasted = r.readUnary() + 1;
    stats.wastedBits++;
    if (wasted >= bps) throw new FrameError(`${wasted} wasted bits in a ${bps}-bit subframe`);
    bps -= wasted;
  }
  if (type === 0) {
    stats.constant++;
    out.fill(r.readSigned(bps), 0, blockSize);
  } else if (type === 1) {
    stats.verbatim++;
    for (let i = 0; i < blockSize; i++) out[i] = r.readSigned(bps);
  } else if (type >= 8 && type <= 12) {
    stats.fixed++;
    const order = type - 8;
    if (order > blockSize) throw new FrameError(`predictor order ${order} > block size`);
    for (let i = 0; i < order; i++) out[i] = r.readSigned(bps);
    readResidual(r, out, blockSize, order, stats);
    restoreFixed(out, blockSize, order);
  } else if (type >= 32) {
    stats.lpc++;
    const order = type - 31;
    if (order > blockSize) throw new FrameError(`predictor order ${order} > block size`);
    for (let i = 0; i < order; i++) out[i] = r.readSigned(bps);
    const precision = r.readBits(4) + 1;
    if (precision === 16) throw new FrameError("invalid LPC coefficient precision code 15");
    const shift = r.readSigned(5);
    if (shift < 0) throw new FrameError(`negative LPC shift ${shift}`);
    const coefs: number[] = [];
    for (let j = 0; j < order; j++) coefs.push(r.readSigned(precision));
    readResidual(r, out, blockSize, order, stats);
    restoreLpc(out, blockSize, coefs, shift);
  } else {
    throw new FrameError(`reserved subframe type ${type}`);
  }
  if (wasted > 0) {
    const scale = 2 ** wasted;
    for (let i = 0; i < blockSize; i++) out[i] *= scale;
  }
}

/**
 * Decodes the subframes of a frame whose header was just read, checks the CRC-16 over the
 * whole frame (from `frameStart`), undoes stereo decorrelation, and leaves r after the frame.
 * `channels[c]` must hold at least blockSize values; on return they hold the samples.
 */
export function readFrameBody(
  r: BitReader,
  frameStart: number,
  header: FrameHeader,
  bps: number,
  channels: Float64Array[],
  stats: FlacStats,
): void {
  const n = header.blockSize;
  const a = header.channelAssignment;
  for (let c = 0; c < header.channels; c++) {
    // The side channel carries one extra bit (RFC 9639 §9.2).
    const side = (a === LEFT_SIDE && c === 1) || (a === SIDE_RIGHT && c === 0) ||
      (a === MID_SIDE && c === 1);
    readSubframe(r, channels[c], n, side ? bps + 1 : bps, stats);
  }
  r.alignToByte();
  const expected = crc16(r.data, frameStart, r.pos);
  const stored = r.readBits(16);
  if (stored !== expected) {
    throw new FrameError(
      `bad frame CRC-16 (stored 0x${hex(stored, 4)}, computed 0x${hex(expected, 4)})`,
    );
  }
  stats.assignments[a]++;
  const [x, y] = channels;
  if (a === LEFT_SIDE) {
    for (let i = 0; i < n; i++) y[i] = x[i] - y[i];
  } else if (a === SIDE_RIGHT) {
    for (let i = 0; i < n; i++) x[i] += y[i];
  } else if (a === MID_SIDE) {
    for (let i = 0; i < n; i++) {
      const side = y[i];
      const mid = x[i] * 2 + (side % 2 === 0 ? 0 : 1); // the bit the mid channel lost
      x[i] = (mid + side) / 2;
      y[i] = (mid - side) / 2;
    }
  }
}
