/**
 * Remembers the sha256 of files by (device, inode, size, mtime), so that a no-op rerun over a
 * 60 GB corpus stats files instead of reading them. An entry is trusted only while all four
 * match; any change of the file changes its mtime or size, and a replaced file gets a new inode.
 *
 * Stored as one JSON file in the cache, rewritten atomically; two processes writing at once
 * lose at most each other's new entries (a later rehash), never correctness.
 */
import { z } from "zod";
import { resolve } from "node:path";
import { sha256File } from "./hash.ts";
import { exists, writeFileAtomic } from "./fs_util.ts";

const EntrySchema = z.object({
  dev: z.number(),
  ino: z.number(),
  size: z.number(),
  mtimeMs: z.number(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
type Entry = z.infer<typeof EntrySchema>;
const FileSchema = z.object({ version: z.literal(1), entries: z.record(z.string(), EntrySchema) });

export class HashCache {
  #entries = new Map<string, Entry>();
  #dirty = false;
  /** Files actually read (not answered from the cache) since creation: for tests and bench. */
  filesHashed = 0;

  private constructor(readonly path: string | null) {}

  /** A cache backed by `path`; a missing or unreadable file starts empty (it is only a cache). */
  static async open(path: string | null): Promise<HashCache> {
    const cache = new HashCache(path);
    if (path && (await exists(path))) {
      try {
        const parsed = FileSchema.parse(JSON.parse(await Deno.readTextFile(path)));
        for (const [k, v] of Object.entries(parsed.entries)) cache.#entries.set(k, v);
      } catch {
        // A corrupt cache costs one rehash; it is never an error.
      }
    }
    return cache;
  }

  async sha256(path: string, onBytes?: (n: number) => void): Promise<string> {
    return (await this.hashFile(path, onBytes)).sha256;
  }

  /** sha256 and size of a file, with one stat(2) when the cache answers. */
  async hashFile(
    path: string,
    onBytes?: (n: number) => void,
  ): Promise<{ sha256: string; size: number }> {
    const abs = resolve(path);
    const st = await Deno.stat(abs);
    const mtimeMs = st.mtime?.getTime() ?? 0;
    const hit = this.#entries.get(abs);
    if (
      hit && hit.dev === st.dev && hit.ino === st.ino && hit.size === st.size &&
      hit.mtimeMs === mtimeMs
    ) {
      onBytes?.(st.size);
      return { sha256: hit.sha256, size: st.size };
    }
    const sha256 = await sha256File(abs, onBytes);
    this.filesHashed++;
    this.#entries.set(abs, { dev: st.dev, ino: st.ino ?? 0, size: st.size, mtimeMs, sha256 });
    this.#dirty = true;
    return { sha256, size: st.size };
  }

  async save(): Promise<void> {
    if (!this.path || !this.#dirty) return;
    const entries: Record<string, Entry> = {};
    for (const [k, v] of this.#entries) entries[k] = v;
    await writeFileAtomic(this.path, JSON.stringify({ version: 1, entries }));
    this.#dirty = false;
  }
}
