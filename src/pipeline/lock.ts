/**
 * A per-key lock so that two runs never build the same artifact at once.
 *
 * It is an flock(2) on `<cache>/locks/<stage>-<key>.lock`: the kernel drops it when the owner
 * dies, however it dies. The file also holds the owner's pid, host and start time, for the
 * waiting message, and is emptied on a clean release; so a lock acquired over a non-empty file
 * means the previous owner died holding it, and we say so.
 */
import { z } from "zod";

const OwnerSchema = z.object({ pid: z.number(), host: z.string(), started: z.string() });
export type LockOwner = z.infer<typeof OwnerSchema>;

export interface LockEvents {
  /** Called once when the lock is held by another live process and we start waiting. */
  onWait?(owner: LockOwner | null): void;
  /** Called when the previous owner died holding the lock (kill -9, power cut). */
  onStale?(owner: LockOwner): void;
}

export class KeyLock {
  private constructor(private file: Deno.FsFile, readonly path: string) {}

  static async acquire(path: string, events: LockEvents = {}): Promise<KeyLock> {
    const file = await Deno.open(path, { read: true, write: true, create: true });
    try {
      if (!(await file.tryLock(true))) {
        events.onWait?.(await readOwner(path));
        await file.lock(true);
      }
      const previous = await readOwner(path);
      if (previous) events.onStale?.(previous);
      const me: LockOwner = {
        pid: Deno.pid,
        host: Deno.hostname(),
        started: new Date().toISOString(),
      };
      await file.truncate(0);
      const bytes = new TextEncoder().encode(JSON.stringify(me));
      await file.seek(0, Deno.SeekMode.Start);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
      return new KeyLock(file, path);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** True when some live process holds the lock at `path` right now. */
  static async isHeld(path: string): Promise<boolean> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    try {
      const got = await file.tryLock(true);
      if (got) await file.unlock();
      return !got;
    } finally {
      file.close();
    }
  }

  async release(): Promise<void> {
    await this.file.truncate(0);
    await this.file.unlock();
    this.file.close();
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  const text = await Deno.readTextFile(path).catch(() => "");
  if (!text.trim()) return null;
  try {
    return OwnerSchema.parse(JSON.parse(text));
  } catch {
    return { pid: -1, host: "?", started: "?" }; // torn write by a dying owner
  }
}
