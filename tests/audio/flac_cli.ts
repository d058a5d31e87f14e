/** Test helpers around the Debian `flac` encoder: presence check and raw PCM encoding. */

/** Whether the `flac` command runs here. */
export async function haveFlacCli(): Promise<boolean> {
  try {
    const out = await new Deno.Command("flac", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

export const FLAC_MISSING =
  "flac CLI not found: skipping tests that encode with it (run scripts/ensure-toolchain.sh or make setup)";

/** Interleaves integer channels into little-endian signed PCM of bps/8 bytes per sample. */
export function interleave(channels: Int32Array[], bps: 8 | 16 | 24 | 32): Uint8Array {
  const bytes = bps / 8;
  const n = channels[0].length;
  const out = new Uint8Array(n * channels.length * bytes);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (const ch of channels) {
      for (let b = 0; b < bytes; b++) out[o++] = (ch[i] >> (8 * b)) & 0xff;
    }
  }
  return out;
}

/** Encodes raw PCM with `flac <args>`; returns the path of the .flac file written into dir. */
export async function encodeRaw(
  dir: string,
  name: string,
  channels: Int32Array[],
  bps: 8 | 16 | 24 | 32,
  sampleRate: number,
  args: string[],
): Promise<string> {
  const raw = `${dir}/${name}.raw`;
  const flac = `${dir}/${name}.flac`;
  await Deno.writeFile(raw, interleave(channels, bps));
  const out = await new Deno.Command("flac", {
    args: [
      "--silent",
      "--force",
      "--force-raw-format",
      "--endian=little",
      "--sign=signed",
      `--channels=${channels.length}`,
      `--bps=${bps}`,
      `--sample-rate=${sampleRate}`,
      ...args,
      "-o",
      flac,
      raw,
    ],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`flac ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return flac;
}
