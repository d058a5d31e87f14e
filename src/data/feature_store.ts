/**
 * Reading the fbank stage's store: per split and speed, an utterance's (T, n_mels) features read
 * straight from its shard with one positioned read (no whole-shard loads).
 */
import { join } from "node:path";
import { type SplitIndex, SplitIndexSchema } from "../stages/fbank.ts";

export interface FeatureLocation {
  file: string; // absolute shard path
  offset: number; // bytes
  frames: number;
}

export class FeatureStore {
  readonly #where = new Map<string, FeatureLocation>(); // `${split}/${speed}/${id}`
  readonly index: Record<string, SplitIndex> = {};

  private constructor(readonly root: string, public nMels: number) {}

  /** Opens the store at `root` (the fbank artifact) for the given splits. */
  static async open(root: string, splits: string[]): Promise<FeatureStore> {
    let nMels = 0;
    const store = new FeatureStore(root, 0);
    for (const split of splits) {
      const path = join(root, "index", `${split}.json`);
      const parsed = SplitIndexSchema.safeParse(JSON.parse(await Deno.readTextFile(path)));
      if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues[0].message}`);
      const idx = parsed.data;
      store.index[split] = idx;
      nMels = idx.n_mels;
      for (const [speed, shards] of Object.entries(idx.speeds)) {
        for (const shard of shards) {
          let offset = 0;
          shard.ids.forEach((id, i) => {
            store.#where.set(`${split}/${speed}/${id}`, {
              file: join(root, shard.file),
              offset,
              frames: shard.frames[i],
            });
            offset += shard.frames[i] * idx.n_mels * 4;
          });
        }
      }
    }
    store.nMels = nMels;
    return store;
  }

  /** Speeds stored for a split (training splits: the recipe's speeds; others: 100). */
  speeds(split: string): number[] {
    return Object.keys(this.index[split]?.speeds ?? {}).map(Number);
  }

  locate(split: string, speed: number, id: string): FeatureLocation {
    const loc = this.#where.get(`${split}/${speed}/${id}`);
    if (!loc) {
      throw new Error(`feature store ${this.root}: no ${split} utterance ${id} at speed ${speed}`);
    }
    return loc;
  }

  /** (T, n_mels) features of one utterance. */
  async read(split: string, speed: number, id: string): Promise<Float32Array> {
    const loc = this.locate(split, speed, id);
    const out = new Float32Array(loc.frames * this.nMels);
    const bytes = new Uint8Array(out.buffer);
    using f = await Deno.open(loc.file, { read: true });
    await f.seek(loc.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < bytes.length) {
      const n = await f.read(bytes.subarray(got));
      if (n === null) throw new Error(`${loc.file}: truncated at byte ${loc.offset + got}`);
      got += n;
    }
    return out;
  }
}
