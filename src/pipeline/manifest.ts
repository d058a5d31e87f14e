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
  const files: FileEntry[] = [];
  let bytes = 0;
  for (const rel of await listFiles(root)) {
    if (opts.exclude?.(rel)) continue;
    const abs = join(root, rel);
    const size = (await Deno.stat(abs)).size;
    const sha256 = opts.hashCache
      ? await opts.hashCache.sha256(abs, opts.onBytes)
      : await sha256File(abs, opts.onBytes);
    files.push({ path: rel, size, sha256 });
    bytes += size;
  }
  return { files, contentHash: contentHashOf(files), bytes };
}
