/**
 * Durable checkpoints for a long stage. Each checkpoint is a directory `<step>/` of files plus
 * `checkpoint.json` (size and sha256 of each), written under a temp name and renamed into place;
 * `latest()` returns the newest one whose files still match, so a checkpoint interrupted
 * mid-write, or damaged on disk, is skipped and the one before it is used.
 */
import { join } from "node:path";
import { z } from "zod";
import { exists, fsyncDir, fsyncTree, removeIfExists, siblingTempName } from "./fs_util.ts";
import { hashTree } from "./manifest.ts";

const CheckpointManifestSchema = z.object({
  step: z.number().int().nonnegative(),
  created: z.string(),
  files: z.array(z.object({ path: z.string(), size: z.number(), sha256: z.string() })),
  contentHash: z.string(),
});

export interface Checkpoint {
  step: number;
  dir: string;
  read(name: string): Promise<Uint8Array>;
  readText(name: string): Promise<string>;
}

export class Checkpoints {
  constructor(
    readonly root: string,
    readonly keep = 2,
    private warn: (m: string) => void = () => {},
  ) {}

  private dirOf(step: number): string {
    return join(this.root, String(step).padStart(12, "0"));
  }

  /** Saves `files` as checkpoint `step` and deletes all but the newest `keep` checkpoints. */
  async save(step: number, files: Record<string, Uint8Array | string>): Promise<void> {
    await Deno.mkdir(this.root, { recursive: true });
    // Debris of a save that was killed mid-way (one writer per key: the engine's lock).
    for await (const e of Deno.readDir(this.root)) {
      if (!/^\d{12}$/.test(e.name)) await removeIfExists(join(this.root, e.name));
    }
    const final = this.dirOf(step);
    const tmp = siblingTempName(final);
    await Deno.mkdir(tmp);
    for (const [name, data] of Object.entries(files)) {
      if (name === "checkpoint.json" || name.includes("..") || name.startsWith("/")) {
        throw new Error(`checkpoint file name "${name}" is not allowed`);
      }
      const p = join(tmp, name);
      await Deno.mkdir(join(p, ".."), { recursive: true });
      await Deno.writeFile(p, typeof data === "string" ? new TextEncoder().encode(data) : data);
    }
    const tree = await hashTree(tmp);
    const manifest = {
      step,
      created: new Date().toISOString(),
      files: tree.files,
      contentHash: tree.contentHash,
    };
    await Deno.writeTextFile(join(tmp, "checkpoint.json"), JSON.stringify(manifest, null, 1));
    await fsyncTree(tmp);
    await removeIfExists(final);
    await Deno.rename(tmp, final);
    await fsyncDir(this.root);
    const steps = await this.steps();
    for (const old of steps.slice(0, Math.max(0, steps.length - this.keep))) {
      await removeIfExists(this.dirOf(old));
    }
  }

  /** Steps of the checkpoints present (complete or not), ascending. */
  async steps(): Promise<number[]> {
    if (!(await exists(this.root))) return [];
    const out: number[] = [];
    for await (const e of Deno.readDir(this.root)) {
      if (e.isDirectory && /^\d{12}$/.test(e.name)) out.push(Number(e.name));
    }
    return out.sort((a, b) => a - b);
  }

  /** The newest checkpoint whose files match its record, or null. Damaged ones are removed. */
  async latest(): Promise<Checkpoint | null> {
    const steps = await this.steps();
    for (let i = steps.length - 1; i >= 0; i--) {
      const dir = this.dirOf(steps[i]);
      const problem = await this.check(dir);
      if (problem === null) {
        return {
          step: steps[i],
          dir,
          read: (name) => Deno.readFile(join(dir, name)),
          readText: (name) => Deno.readTextFile(join(dir, name)),
        };
      }
      this.warn(`checkpoint ${steps[i]} is damaged (${problem}); using an older one`);
      await removeIfExists(dir);
    }
    return null;
  }

  private async check(dir: string): Promise<string | null> {
    let manifest;
    try {
      manifest = CheckpointManifestSchema.parse(
        JSON.parse(await Deno.readTextFile(join(dir, "checkpoint.json"))),
      );
    } catch (e) {
      return `checkpoint.json unreadable: ${e instanceof Error ? e.message.split("\n")[0] : e}`;
    }
    const tree = await hashTree(dir, { exclude: (rel) => rel === "checkpoint.json" });
    return tree.contentHash === manifest.contentHash ? null : "files differ from checkpoint.json";
  }
}
