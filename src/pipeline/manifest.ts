/**
 * The manifest of a file tree: relative path, size and sha256 of every file. Its sha256 (of the
 * canonical JSON of the file list) is the tree's content hash: two trees with the same files
 * have the same content hash wherever and whenever they were made.
 */
import { join } from "node:path";
import { canonicalJson } from "./canonical_json.ts";
import { sha256File, sha256Hex } from "./hash.ts";
import { HashCache } from "./hash_cache.ts";
import { listFiles } from "./fs_util.ts";

export interface FileEntry {
  path: string; // relative, "/"-separated
  size: number; // bytes
  sha256: string;
}

export interface TreeManifest {
  files: FileEntry[]; // sorted by path
  contentHash: string;
  bytes: number;
}

export function contentHashOf(files: FileEntry[]): string {
  return sha256Hex(
    canonicalJson(files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size }))),
  );
}

/**
 * Hashes every file under `root` except those whose relative path `exclude` accepts.
 * `hashCache` (optional) answers unchanged files without reading them.
 */
export async function hashTree(
  root: string,
  opts: {
    exclude?: (rel: string) => boolean;
    hashCache?: HashCache;
    onBytes?: (n: number) => void;
  } = {},
): Promise<TreeManifest> {
  const rels = (await listFiles(root)).filter((rel) => !opts.exclude?.(rel));
  const files: FileEntry[] = new Array(rels.length);
  // A few files in flight at once: stats and reads overlap in Deno's I/O threads. The result
  // is ordered by path whatever the completion order.
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < rels.length; i = next++) {
      const abs = join(root, rels[i]);
      const { sha256, size } = opts.hashCache
        ? await opts.hashCache.hashFile(abs, opts.onBytes)
        : await hashUncached(abs, opts.onBytes);
      files[i] = { path: rels[i], size, sha256 };
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, rels.length) }, worker));
  const bytes = files.reduce((n, f) => n + f.size, 0);
  return { files, contentHash: contentHashOf(files), bytes };
}

async function hashUncached(
  abs: string,
  onBytes?: (n: number) => void,
): Promise<{ sha256: string; size: number }> {
  const size = (await Deno.stat(abs)).size;
  return { sha256: await sha256File(abs, onBytes), size };
}
