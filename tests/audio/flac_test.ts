import assert from "node:assert/strict";
import { Prng } from "../fixtures/prng.ts";
import { decodeFlacPcm, FlacError, flacInfo, readFlac } from "../../src/audio/flac.ts";
import { emptyStats, type FlacStats } from "../../src/audio/flac_frame.ts";
import { encodeRaw, FLAC_MISSING, haveFlacCli } from "./flac_cli.ts";

/** The FlacError that fn throws; fails the test when it throws nothing or something else. */
async function failure(fn: () => Promise<unknown>): Promise<FlacError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof FlacError, `expected a FlacError, got ${e}`);
    return e;
  }
  throw new assert.AssertionError({ message: "expected a FlacError, nothing was thrown" });
}

function failureSync(fn: () => unknown): FlacError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FlacError, `expected a FlacError, got ${e}`);
    return e;
  }
  throw new assert.AssertionError({ message: "expected a FlacError, nothing was thrown" });
}

const HAVE_FLAC = await haveFlacCli();
if (!HAVE_FLAC) console.warn(FLAC_MISSING);

type Bps = 8 | 16 | 24 | 32;

/** Clamps to the bps range (encoders require it; rounding keeps the values integer). */
function clamp(v: number, bps: Bps): number {
  const top = 2 ** (bps - 1);
  return Math.max(-top, Math.min(top - 1, Math.round(v)));
}

function signal(n: number, f: (i: number) => number, bps: Bps): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => clamp(f(i), bps));
}

/** Speech-like: two tones with a slow envelope plus a little noise. */
function tones(rng: Prng, n: number, bps: Bps, noise = 0.002): Int32Array {
  const a = 2 ** (bps - 1) * 0.4;
  return signal(n, (i) => {
    const env = 0.5 + 0.5 * Math.sin(i * 0.0007);
    return a * env * (Math.sin(i * 0.031) + 0.5 * Math.sin(i * 0.173)) +
      a * noise * (rng.next() * 2 - 1);
  }, bps);
}

/** Full-scale white noise, including both extremes (exercises VERBATIM and the range ends). */
function noise(rng: Prng, n: number, bps: Bps): Int32Array {
  const top = 2 ** (bps - 1);
  const s = signal(n, () => rng.int(-top, top - 1), bps);
  s[0] = -top;
  s[1] = top - 1;
  return s;
}

function add(a: Int32Array, b: Int32Array, k: number, bps: Bps): Int32Array {
  return signal(a.length, (i) => a[i] + k * b[i], bps);
}

interface Case {
  name: string;
  bps: Bps;
  rate: number;
  args: string[];
  make: (rng: Prng) => Int32Array[];
}

const N = 20000;
const CASES: Case[] = [
  { name: "mono16 -0", bps: 16, rate: 16000, args: ["-0"], make: (r) => [tones(r, N, 16)] },
  { name: "mono16 -5", bps: 16, rate: 16000, args: ["-5"], make: (r) => [tones(r, N, 16)] },
  { name: "mono16 -8", bps: 16, rate: 16000, args: ["-8"], make: (r) => [tones(r, N, 16)] },
  {
    name: "mono16 -8 lpc order 32, 15-bit coefficients, block 192",
    bps: 16,
    rate: 16000,
    args: ["-8", "--lax", "-l", "32", "-q", "15", "-b", "192"],
    make: (r) => [tones(r, N, 16)],
  },
  {
    name: "mono16 odd block sizes 1000 (16-bit code) at 44.1 kHz",
    bps: 16,
    rate: 44100,
    args: ["-5", "-b", "1000"],
    make: (r) => [tones(r, N, 16)],
  },
  {
    name: "mono16 block 200 (8-bit code) at 11025 Hz",
    bps: 16,
    rate: 11025,
    args: ["-5", "--lax", "-b", "200"],
    make: (r) => [tones(r, N, 16)],
  },
  {
    name: "mono16 block 16384 at 50 kHz",
    bps: 16,
    rate: 50000,
    args: ["-8", "--lax", "-b", "16384"],
    make: (r) => [tones(r, 3 * N, 16)],
  },
  { name: "mono16 noise", bps: 16, rate: 16000, args: ["-5"], make: (r) => [noise(r, N, 16)] },
  {
    name: "mono16 silence with a burst",
    bps: 16,
    rate: 16000,
    args: ["-5", "-b", "1024"],
    make: (_r) => [signal(N, (i) => (i > 8000 && i < 9000 ? 3000 * Math.sin(i) : 0), 16)],
  },
  {
    name: "mono16 low bits zero (wasted bits)",
    bps: 16,
    rate: 16000,
    args: ["-5"],
    make: (r) => [tones(r, N, 16).map((v) => v & ~7)],
  },
  {
    name: "stereo16 independent (-0, no mid-side)",
    bps: 16,
    rate: 16000,
    args: ["-0"],
    make: (r) => [tones(r, N, 16), tones(r, N, 16)],
  },
  {
    name: "stereo16 independent (quiet left, loud noise right)",
    bps: 16,
    rate: 16000,
    args: ["-5"],
    make: (r) => [signal(N, () => r.int(-10, 10), 16), noise(r, N, 16)],
  },
  {
    name: "stereo16 left-side (smooth left, right = left + noise)",
    bps: 16,
    rate: 16000,
    args: ["-5"],
    make: (r) => {
      const left = tones(r, N, 16, 0);
      return [left, add(left, signal(N, () => r.int(-200, 200), 16), 1, 16)];
    },
  },
  {
    name: "stereo16 side-right (smooth right, left = right + noise)",
    bps: 16,
    rate: 16000,
    args: ["-5"],
    make: (r) => {
      const right = tones(r, N, 16, 0);
      return [add(right, signal(N, () => r.int(-200, 200), 16), 1, 16), right];
    },
  },
  {
    name: "stereo16 mid-side (left = x + n, right = x - n)",
    bps: 16,
    rate: 16000,
    args: ["-8"],
    make: (r) => {
      const x = tones(r, N, 16, 0);
      const n = signal(N, () => r.int(-200, 200), 16);
      // The parity bit of the side channel varies, so mid's lost bit must be restored.
      const right = add(x, n, -1, 16).map((v) => v + r.int(0, 1));
      return [add(x, n, 1, 16), right];
    },
  },
  { name: "mono8 -5", bps: 8, rate: 8000, args: ["-5"], make: (r) => [tones(r, N, 8)] },
  {
    name: "stereo24 -8 (Rice2)",
    bps: 24,
    rate: 48000,
    args: ["-8"],
    make: (r) => [tones(r, N, 24, 0.05), tones(r, N, 24, 0.05)],
  },
  {
    name: "stereo32 -5 (33-bit side channel)",
    bps: 32,
    rate: 96000,
    args: ["-5"],
    make: (r) => {
      const x = tones(r, N, 32, 0.01);
      return [x, x.map((v, i) => clamp(v - 1000 + (i % 7), 32))];
    },
  },
];

Deno.test({
  name: "flac: decodes what the flac CLI encodes, sample for sample",
  ignore: !HAVE_FLAC,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "cm-flac-" });
    const total: FlacStats = emptyStats();
    try {
      for (const [k, c] of CASES.entries()) {
        await t.step(c.name, async () => {
          const channels = c.make(new Prng(1000 + k));
          const path = await encodeRaw(dir, `case${k}`, channels, c.bps, c.rate, c.args);
          const pcm = decodeFlacPcm(await Deno.readFile(path), { name: path });
          assert.deepEqual(pcm.info.sampleRate, c.rate);
          assert.deepEqual(pcm.info.channels, channels.length);
          assert.deepEqual(pcm.info.bitsPerSample, c.bps);
          assert.deepEqual(pcm.info.totalSamples, channels[0].length);
          assert(pcm.info.md5 !== null, "flac stores an MD5");
          assert.deepEqual(pcm.length, channels[0].length);
          for (const [ch, expected] of channels.entries()) {
            const got = pcm.channels[ch];
            const bad = expected.findIndex((v, i) => got[i] !== v);
            assert.deepEqual(bad, -1, `channel ${ch} differs at sample ${bad}`);
          }
          for (const key of Object.keys(total) as (keyof FlacStats)[]) {
            if (key === "assignments") {
              pcm.stats.assignments.forEach((v, i) => total.assignments[i] += v);
            } else total[key] += pcm.stats[key];
          }
          const info = await flacInfo(path);
          assert.deepEqual(info, pcm.info);
          assert.deepEqual(info.duration, channels[0].length / c.rate);
        });
      }
      await t.step("every coding tool of the format was met", () => {
        for (const tool of ["constant", "verbatim", "fixed", "lpc", "wastedBits"] as const) {
          assert(total[tool] > 0, `no ${tool} subframe decoded`);
        }
        assert(total.ricePartitions > 0 && total.rice2Partitions > 0, "Rice and Rice2 residuals");
        const a = total.assignments;
        assert(a[0] > 0 && a[1] > 0, "mono and independent stereo frames");
        assert(a[8] > 0, "left-side frames");
        assert(a[9] > 0, "side-right frames");
        assert(a[10] > 0, "mid-side frames");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "flac: floats are int / 2^(bps-1) in [-1, 1)",
  ignore: !HAVE_FLAC,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cm-flac-" });
    try {
      const ints = noise(new Prng(7), 5000, 16);
      const path = await encodeRaw(dir, "noise", [ints], 16, 16000, ["-5"]);
      const audio = await readFlac(path);
      assert.deepEqual(audio.sampleRate, 16000);
      const f = audio.channels[0];
      for (let i = 0; i < ints.length; i++) assert.deepEqual(f[i], ints[i] / 32768);
      assert.deepEqual(f[0], -1);
      assert.deepEqual(f[1], 32767 / 32768);
      assert(f.every((v) => v >= -1 && v < 1));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A noise file (VERBATIM frames: every byte is a sample, so a flip is caught only by the CRC). */
async function noiseFile(
  dir: string,
): Promise<{ path: string; bytes: Uint8Array; frames: number }> {
  const path = await encodeRaw(dir, "noise", [noise(new Prng(3), 8192, 16)], 16, 16000, [
    "-5",
    "-b",
    "1024",
    "--no-padding",
    "--no-seektable",
  ]);
  const bytes = await Deno.readFile(path);
  let frames = bytes.length;
  for (let i = 4; i < bytes.length - 1; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xf8) {
      frames = i; // first frame sync (noise bytes cannot precede it: metadata comes first)
      break;
    }
  }
  return { path, bytes, frames };
}

Deno.test({
  name: "flac: corruption is an error that names the file and the fault",
  ignore: !HAVE_FLAC,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "cm-flac-" });
    try {
      const { bytes, frames } = await noiseFile(dir);
      const bad = `${dir}/bad.flac`;
      const write = async (b: Uint8Array) => await Deno.writeFile(bad, b);

      await t.step("a flipped sample byte fails the frame CRC-16", async () => {
        const b = bytes.slice();
        b[frames + 500] ^= 0x10;
        await write(b);
        const e = await failure(() => readFlac(bad));
        assert(e.message.startsWith(`${bad}: frame 0`), e.message);
        assert(e.message.includes("CRC-16"), e.message);
      });

      await t.step("a flipped header byte fails the CRC-8", async () => {
        const b = bytes.slice();
        b[frames + 4] ^= 0x01; // coded frame number of frame 0
        await write(b);
        const e = await failure(() => readFlac(bad));
        assert(e.message.includes("CRC-8"), e.message);
      });

      await t.step("any flipped byte in the frames is a FlacError naming the file", () => {
        const rng = new Prng(11);
        for (let k = 0; k < 200; k++) {
          const b = bytes.slice();
          const at = rng.int(frames, b.length - 1);
          b[at] ^= 1 << rng.int(0, 7);
          const e = failureSync(() => decodeFlacPcm(b, { name: bad }));
          assert(e.message.startsWith(`${bad}: `), e.message);
        }
      });

      await t.step("a changed STREAMINFO MD5 is reported", () => {
        const b = bytes.slice();
        b[8 + 18 + 3] ^= 0xff; // first MD5 byte: marker 4 + block header 4 + 18 bytes in
        const e = failureSync(() => decodeFlacPcm(b, { name: bad }));
        assert(e.message.includes("MD5"), e.message);
        decodeFlacPcm(b, { name: bad, verifyMd5: false }); // the frames themselves are fine
      });

      await t.step("a truncated file says so", async () => {
        await write(bytes.subarray(0, frames + 3000));
        const e = await failure(() => readFlac(bad));
        assert(e.message.startsWith(`${bad}: truncated`), e.message);
        await write(bytes.subarray(0, 20));
        const h = await failure(() => flacInfo(bad));
        assert(h.message.includes("truncated"), h.message);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("flac: a file that is not FLAC is named as such", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cm-flac-" });
  try {
    const path = `${dir}/x.wav`;
    await Deno.writeFile(
      path,
      new TextEncoder().encode("RIFF....WAVEfmt and some more bytes here"),
    );
    const e = await failure(() => readFlac(path));
    assert.deepEqual(e.message, `${path}: not a FLAC file (no "fLaC" marker at byte 0)`);
    assert.match((await failure(() => flacInfo(path))).message, /not a FLAC file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
