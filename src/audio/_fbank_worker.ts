/** A worker of the fbank stage's pool: computes the shards it is sent, one at a time. */
/// <reference lib="deno.worker" />
import { WasmBackend } from "../tensor/wasm_backend.ts";
import { computeShard, type ShardJob } from "./feature_shard.ts";

let backend: WasmBackend | null = null;

self.onmessage = async (e: MessageEvent<{ seq: number; job: ShardJob }>) => {
  try {
    backend ??= await WasmBackend.create({ threads: 1 });
    const result = await computeShard(backend, e.data.job);
    self.postMessage({ seq: e.data.seq, result });
  } catch (err) {
    self.postMessage({ seq: e.data.seq, error: err instanceof Error ? err.message : String(err) });
  }
};
