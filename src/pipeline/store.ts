/**
 * The artifact store, under one cache directory:
 *
 *   artifacts/<stage>/<key>/        a finished artifact: its files + manifest.json
 *   partial/<stage>/<key>/out/      the temp dir a running (or interrupted) stage writes into
 *   partial/<stage>/<key>/checkpoints/
 *   partial/<stage>/<key>/complete  marker: run() returned, only hashing/publishing is left
 *   locks/<stage>-<key>.lock        per-key flock
 *   runs/<experiment>/<time>.json   what each pipeline run used and produced
 *   hash-cache.json                 sha256 of external files by (dev, inode, size, mtime)
 *
 * partial/ and artifacts/ are on one file system, so publication is a single rename(2) of a
 * fully written, fsynced directory: a reader sees no artifact or a whole one.
 */
import { join } from "node:path";
import { z } from "zod";
import { exists, listFiles, removeIfExists } from "./fs_util.ts";
import { contentHashOf, hashTree } from "./manifest.ts";

export const MANIFEST_NAME = "manifest.json";

const FileEntrySchema = z.object({ path: z.string(), size: z.number(), sha256: z.string() });

export const IngredientsSchema = z.object({
  stage: z.string(),
  version: z.number(),
  config: z.record(z.string(), z.unknown()),
  inputs: z.record(z.string(), z.string()),
  externals: z.array(z.object({ path: z.string(), contentHash: z.string() })),
  /** Hashes of compiled code the stage computes with (e.g. kernels_wasm), when it declares it. */
  code: z.record(z.string(), z.string()).optional(),
});
export type Ingredients = z.infer<typeof IngredientsSchema>;

export const ArtifactManifestSchema = z.object({
  format: z.literal(1),
  stage: z.string(),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  ingredients: IngredientsSchema,
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number(),
  files: z.array(FileEntrySchema),
  created: z.string(),
  durationMs: z.number(),
  resumed: z.boolean(),
  host: z.string(),
  versions: z.record(z.string(), z.string().nullable()),
});
export type ArtifactManifest = z.infer<typeof ArtifactManifestSchema>;

export class ArtifactStore {
  constructor(readonly root: string) {}

  artifactDir(stage: string, key: string): string {
    return join(this.root, "artifacts", stage, key);
  }
  partialDir(stage: string, key: string): string {
    return join(this.root, "partial", stage, key);
  }
  lockPath(stage: string, key: string): string {
    return join(this.root, "locks", `${stage}-${key}.lock`);
  }
  get hashCachePath(): string {
    return join(this.root, "hash-cache.json");
  }
  runsDir(experiment: string): string {
    return join(this.root, "runs", experiment);
  }

  async init(): Promise<void> {
    for (const d of ["artifacts", "partial", "locks", "runs"]) {
      await Deno.mkdir(join(this.root, d), { recursive: true });
    }
  }

  /** The manifest of a published artifact, or null when there is none for this key. */
  async get(stage: string, key: string): Promise<ArtifactManifest | null> {
    const path = join(this.artifactDir(stage, key), MANIFEST_NAME);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    return parseManifest(text, path);
  }

  /** Every published artifact (stage, key, manifest); unreadable manifests come back as errors. */
  async list(): Promise<{ stage: string; key: string; manifest: ArtifactManifest | Error }[]> {
    const out: { stage: string; key: string; manifest: ArtifactManifest | Error }[] = [];
    const root = join(this.root, "artifacts");
    if (!(await exists(root))) return out;
    for await (const s of Deno.readDir(root)) {
      if (!s.isDirectory) continue;
      for await (const k of Deno.readDir(join(root, s.name))) {
        if (!k.isDirectory) continue;
        let manifest: ArtifactManifest | Error;
        try {
          manifest = (await this.get(s.name, k.name)) ?? new Error("manifest.json is missing");
        } catch (e) {
          manifest = e instanceof Error ? e : new Error(String(e));
        }
        out.push({ stage: s.name, key: k.name, manifest });
      }
    }
    return out.sort((a, b) => (a.stage + a.key).localeCompare(b.stage + b.key));
  }

  /** Interrupted runs: (stage, key) of every partial directory. */
  async listPartial(): Promise<{ stage: string; key: string }[]> {
    const out: { stage: string; key: string }[] = [];
    const root = join(this.root, "partial");
    if (!(await exists(root))) return out;
    for await (const s of Deno.readDir(root)) {
      if (!s.isDirectory) continue;
      for await (const k of Deno.readDir(join(root, s.name))) {
        if (k.isDirectory) out.push({ stage: s.name, key: k.name });
      }
    }
    return out;
  }

  /**
   * Rehashes an artifact's files (reading every byte: no hash cache) and compares them with its
   * manifest. Returns the problems found; empty means intact.
   */
  async verify(stage: string, key: string): Promise<string[]> {
    const dir = this.artifactDir(stage, key);
    let manifest: ArtifactManifest | null;
    try {
      manifest = await this.get(stage, key);
    } catch (e) {
      return [e instanceof Error ? e.message : String(e)];
    }
    if (!manifest) return ["manifest.json is missing"];
    const problems: string[] = [];
    if (manifest.key !== key) problems.push(`manifest names key ${manifest.key}, directory ${key}`);
    if (contentHashOf(manifest.files) !== manifest.contentHash) {
      problems.push("manifest's content hash does not match its own file list");
    }
    const present = new Set((await listFiles(dir)).filter((p) => p !== MANIFEST_NAME));
    const tree = await hashTree(dir, { exclude: (rel) => rel === MANIFEST_NAME });
    const actual = new Map(tree.files.map((f) => [f.path, f]));
    for (const f of manifest.files) {
      const a = actual.get(f.path);
      if (!a) problems.push(`${f.path}: missing`);
      else if (a.size !== f.size) problems.push(`${f.path}: size ${a.size}, expected ${f.size}`);
      else if (a.sha256 !== f.sha256) problems.push(`${f.path}: content differs (sha256)`);
      present.delete(f.path);
    }
    for (const extra of present) problems.push(`${extra}: not in the manifest`);
    return problems;
  }

  /** Removes an artifact: renamed out of artifacts/ first, so no reader sees it half-deleted. */
  async remove(stage: string, key: string): Promise<void> {
    const dir = this.artifactDir(stage, key);
    if (!(await exists(dir))) return;
    const trash = join(this.root, "partial", `.trash-${Deno.pid}-${Date.now()}-${key}`);
    await Deno.rename(dir, trash);
    await removeIfExists(trash);
  }
}

export function parseManifest(text: string, path: string): ArtifactManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  const r = ArtifactManifestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${path}: field "${issue.path.join(".")}": ${issue.message}`);
  }
  return r.data;
}
