/**
 * Streams built bit by bit from RFC 9639, for what the flac CLI never writes: escaped residual
 * partitions (Rice and Rice2), variable block sizes with multi-byte coded sample numbers, the
 * 16-bit sample-rate code, LPC with wasted bits. The expected samples follow from the spec's
 * formulas written out here, independently of the decoder.
 */
import assert from "node:assert/strict";
import { crc16, crc8 } from "../../src/audio/crc.ts";
import { decodeFlacPcm, FlacError } from "../../src/audio/flac.ts";
import { BitWriter } from "./bit_writer.ts";

const N = 200; // samples per frame

function streamInfo(w: BitWriter, totalSamples: number): void {
  w.write(0x664c6143, 32); // "fLaC"
  w.write(1, 1).write(0, 7).write(34, 24); // last block, STREAMINFO, 34 bytes
  w.write(N, 16).write(N, 16).write(0, 24).write(0, 24);
  w.write(16000, 20).write(0, 3).write(15, 5); // 16 kHz, 1 channel, 16 bits
  w.write(Math.floor(totalSamples / 2 ** 32), 4).write(totalSamples >>> 0, 32);
  for (let i = 0; i < 4; i++) w.write(0, 32); // no MD5
}

/** Appends one frame: header fields via `head`, subframe via `body`, then both CRCs. */
function frame(out: BitWriter, head: (w: BitWriter) => void, body: (w: BitWriter) => void): void {
  const w = new BitWriter();
  head(w);
  const h = w.bytes();
  w.write(crc8(h), 8);
  body(w);
  w.align();
  const f = w.bytes();
  for (const b of f) out.write(b, 8);
  out.write(crc16(f), 16);
}

function rice(w: BitWriter, k: number, v: number): void {
  const folded = v >= 0 ? 2 * v : -2 * v - 1;
  w.unary(Math.floor(folded / 2 ** k)).write(folded % 2 ** k, k);
}

/** Frame 0: FIXED order 2; partition 0 escaped (9-bit raw residuals), partition 1 Rice k=3. */
function frame0(residual: number[], warm: [number, number]) {
  return [
    (w: BitWriter) => {
      w.write(0x7ffc, 15).write(1, 1); // sync, variable block size
      w.write(6, 4).write(5, 4); // block size in 8 bits follows; 16 kHz
      w.write(0, 4).write(4, 3).write(0, 1); // mono; 16 bits; reserved
      w.write(0, 8); // coded sample number 0
      w.write(N - 1, 8);
    },
    (w: BitWriter) => {
      w.write(0, 1).write(8 + 2, 6).write(0, 1); // FIXED order 2, no wasted bits
      w.write(warm[0], 16).write(warm[1], 16);
      w.write(0, 2).write(1, 4); // Rice, partition order 1
      w.write(15, 4).write(9, 5); // escape: 9-bit raw values
      for (let i = 2; i < N / 2; i++) w.write(residual[i], 9);
      w.write(3, 4);
      for (let i = N / 2; i < N; i++) rice(w, 3, residual[i]);
    },
  ] as const;
}

/** Frame 1: LPC order 2 with 2 wasted bits; Rice2 escape with 0 bits (all residuals 0). */
function frame1(number: number, warm: [number, number]) {
  return [
    (w: BitWriter) => {
      w.write(0x7ffc, 15).write(1, 1);
      w.write(7, 4).write(13, 4); // block size in 16 bits; sample rate in Hz, 16 bits
      w.write(0, 4).write(0, 3).write(0, 1); // mono; bits from STREAMINFO
      // Coded number on two bytes: 110xxxxx 10xxxxxx.
      w.write(0b110, 3).write(number >> 6, 5).write(0b10, 2).write(number & 63, 6);
      w.write(N - 1, 16).write(16000, 16);
    },
    (w: BitWriter) => {
      w.write(0, 1).write(31 + 2, 6).write(1, 1).unary(1); // LPC order 2, wasted bits 1 + 1
      w.write(warm[0], 14).write(warm[1], 14); // 16 - 2 wasted bits
      w.write(15 - 1, 4).write(3, 5); // precision 15 bits, shift 3
      w.write(13, 15).write(-6, 15); // coefficients: s[i-1], s[i-2]
      w.write(1, 2).write(0, 4).write(31, 5).write(0, 5); // Rice2, one partition, escape, 0 bits
    },
  ] as const;
}

function expected(residual: number[], warm0: [number, number], warm1: [number, number]) {
  const s: number[] = [...warm0];
  for (let i = 2; i < N; i++) s.push(residual[i] + 2 * s[i - 1] - s[i - 2]);
  const t: number[] = [...warm1];
  for (let i = 2; i < N; i++) t.push(Math.floor((13 * t[i - 1] - 6 * t[i - 2]) / 8));
  return [...s, ...t.map((v) => v * 4)];
}

function build(number = N): Uint8Array {
  const residual = Array.from({ length: N }, (_, i) => ((i * 37) % 401) - 200); // |r| <= 200
  const w = new BitWriter();
  streamInfo(w, 2 * N);
  frame(w, ...frame0(residual, [100, 90]));
  frame(w, ...frame1(number, [5000, 4000]));
  return w.bytes();
}

Deno.test("flac: escaped partitions, variable block size, LPC with wasted bits", () => {
  const residual = Array.from({ length: N }, (_, i) => ((i * 37) % 401) - 200);
  const want = expected(residual, [100, 90], [5000, 4000]);
  const pcm = decodeFlacPcm(build(), { name: "handmade.flac" });
  assert.equal(pcm.info.md5, null);
  assert.deepEqual(Array.from(pcm.channels[0]), want);
  assert.equal(pcm.stats.escapedPartitions, 2);
  assert.equal(pcm.stats.lpc, 1);
  assert.equal(pcm.stats.wastedBits, 1);
});

Deno.test("flac: a variable-size frame with the wrong first sample number is refused", () => {
  assert.throws(
    () => decodeFlacPcm(build(N + 1), { name: "handmade.flac" }),
    (e: unknown) =>
      e instanceof FlacError &&
      e.message ===
        "handmade.flac: frame 1 (byte 525): is numbered 201, expected 200 (lost frames?)",
  );
});
