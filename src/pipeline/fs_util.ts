/** File-system helpers for crash-safe writes: write to a temp name, fsync, rename, fsync the dir. */
import { dirname, join, relative, sep as SEPARATOR } from "node:path";

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** fsync a directory so that a rename or create inside it survives a power cut. */
export async function fsyncDir(path: string): Promise<void> {
  using dir = await Deno.open(path, { read: true });
  await dir.sync();
}

let tmpCounter = 0;

/** A name beside `path` that no other process or call uses. */
export function siblingTempName(path: string): string {
  return `${path}.tmp-${Deno.pid}-${Date.now()}-${tmpCounter++}`;
}

/**
 * Writes `data` to `path` so that a reader sees either the old file or the whole new one.
 * The directory must exist. The temp file goes beside `path`, or into `tmpDir` (same file
 * system) when a crash must not leave a stray temp file in `path`'s directory.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  tmpDir?: string,
): Promise<void> {
  const tmp = tmpDir ? siblingTempName(join(tmpDir, "write")) : siblingTempName(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    using f = await Deno.open(tmp, { write: true, createNew: true });
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await Deno.rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** fsync every regular file and directory under `root` (depth first, dirs after their content). */
export async function fsyncTree(root: string): Promise<void> {
  for await (const entry of Deno.readDir(root)) {
    const p = join(root, entry.name);
    if (entry.isDirectory) await fsyncTree(p);
    else if (entry.isFile) {
      using f = await Deno.open(p, { read: true });
      await f.sync();
    }
  }
  await fsyncDir(root);
}

/** Relative paths (with "/" separators) of every regular file under `root`, sorted. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const p = join(dir, entry.name);
      if (entry.isDirectory) await walk(p);
      else if (entry.isFile) out.push(relative(root, p).split(SEPARATOR).join("/"));
      else if (entry.isSymlink) {
        throw new Error(`${p}: symbolic links are not allowed in an artifact`);
      }
    }
  }
  await walk(root);
  return out.sort();
}

export async function removeIfExists(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Total size in bytes of the regular files under `root` (0 when it does not exist). */
export async function treeSize(root: string): Promise<number> {
  if (!(await exists(root))) return 0;
  let total = 0;
  for (const rel of await listFiles(root)) total += (await Deno.stat(join(root, rel))).size;
  return total;
}
