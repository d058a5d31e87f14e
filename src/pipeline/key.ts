/**
 * Stage keys. key = sha256(canonical JSON of the ingredients):
 *   stage name, stage version, the declared config values, the content hashes of the upstream
 *   artifacts, and the (absolute path, content hash) of each declared external input.
 * Upstream artifacts enter by content hash, not key, so an upstream that changed but produced
 * the same files does not trigger reruns below it.
 */
import { resolve } from "node:path";
import { canonicalJson } from "./canonical_json.ts";
import { UndeclaredConfigKeyError, UserError } from "./errors.ts";
import { sha256Hex } from "./hash.ts";
import type { HashCache } from "./hash_cache.ts";
import { hashTree } from "./manifest.ts";
import type { Ingredients } from "./store.ts";
import type { Stage } from "./stage.ts";
import { runtimeVersions } from "./versions.ts";

/**
 * The config as a stage may see it: a frozen object with only the declared keys, behind a proxy
 * that throws on any other key (so a forgotten declaration fails loudly instead of caching stale).
 */
export function restrictConfig<C extends object>(config: C, stage: Stage<C>): Readonly<Partial<C>> {
  const subset: Record<string, unknown> = {};
  for (const k of stage.reads) {
    if (!(k in config)) {
      throw new UserError(
        `stage "${stage.name}" declares config key "${k}", which the config lacks`,
      );
    }
    subset[k] = (config as Record<string, unknown>)[k];
  }
  Object.freeze(subset);
  return new Proxy(subset, {
    get(target, prop, receiver) {
      if (typeof prop === "string" && !Object.hasOwn(target, prop)) {
        throw new UndeclaredConfigKeyError(stage.name, prop);
      }
      return Reflect.get(target, prop, receiver);
    },
    has(target, prop) {
      if (typeof prop === "string" && !Object.hasOwn(target, prop)) {
        throw new UndeclaredConfigKeyError(stage.name, prop);
      }
      return Reflect.has(target, prop);
    },
  }) as Readonly<Partial<C>>;
}

/** JSON-safe copy of the declared values: undefined (an absent optional key) becomes null. */
function declaredValues<C extends object>(config: C, stage: Stage<C>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of stage.reads) out[k] = (config as Record<string, unknown>)[k] ?? null;
  return out;
}

/** Content hash of an external file or directory (a file hashes as a one-file tree). */
export async function externalContentHash(
  path: string,
  hashCache: HashCache,
  onBytes?: (n: number) => void,
): Promise<string> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`${path}: no such file or directory`);
    }
    throw e;
  }
  if (st.isDirectory) return (await hashTree(path, { hashCache, onBytes })).contentHash;
  const sha = await hashCache.sha256(path, onBytes);
  return sha256Hex(canonicalJson([{ path: "", sha256: sha, size: st.size }]));
}

export async function computeKey<C extends object>(
  stage: Stage<C>,
  config: C,
  inputs: Record<string, string>, // upstream stage -> content hash
  hashCache: HashCache,
  onBytes?: (n: number) => void,
): Promise<{ key: string; ingredients: Ingredients }> {
  const externals: { path: string; contentHash: string }[] = [];
  for (const p of stage.externals?.(restrictConfig(config, stage)) ?? []) {
    const path = resolve(p);
    externals.push({ path, contentHash: await externalContentHash(path, hashCache, onBytes) });
  }
  const ingredients: Ingredients = {
    stage: stage.name,
    version: stage.version,
    config: declaredValues(config, stage),
    inputs,
    externals,
  };
  if (stage.usesKernels) {
    const wasm = (await runtimeVersions()).kernels_wasm;
    if (!wasm) {
      throw new UserError(
        `stage "${stage.name}" needs build/kernels.wasm: build it with \`make wasm\``,
      );
    }
    ingredients.code = { kernels_wasm: wasm };
  }
  return { key: sha256Hex(canonicalJson(ingredients)), ingredients };
}

/** Human-readable differences between two ingredient sets (for `explain`). */
export function diffIngredients(was: Ingredients, now: Ingredients): string[] {
  const out: string[] = [];
  const show = (v: unknown) => v === undefined ? "(absent)" : canonicalJson(v);
  if (was.version !== now.version) out.push(`version: ${was.version} -> ${now.version}`);
  for (const k of new Set([...Object.keys(was.config), ...Object.keys(now.config)])) {
    const a = was.config[k], b = now.config[k];
    const sa = show(a), sb = show(b);
    if (sa !== sb) out.push(`config ${k}: ${sa} -> ${sb}`);
  }
  for (const k of new Set([...Object.keys(was.inputs), ...Object.keys(now.inputs)])) {
    const a = was.inputs[k], b = now.inputs[k];
    if (a !== b) {
      out.push(
        `input ${k}: content ${a?.slice(0, 12) ?? "(absent)"} -> ${b?.slice(0, 12) ?? "(absent)"}`,
      );
    }
  }
  for (const k of new Set([...Object.keys(was.code ?? {}), ...Object.keys(now.code ?? {})])) {
    const a = was.code?.[k], b = now.code?.[k];
    if (a !== b) {
      out.push(`code ${k}: ${a?.slice(0, 12) ?? "(absent)"} -> ${b?.slice(0, 12) ?? "(absent)"}`);
    }
  }
  const ea = canonicalJson(was.externals), eb = canonicalJson(now.externals);
  if (ea !== eb) {
    const before = new Map(was.externals.map((e) => [e.path, e.contentHash]));
    const after = new Map(now.externals.map((e) => [e.path, e.contentHash]));
    for (const p of new Set([...before.keys(), ...after.keys()])) {
      if (before.get(p) !== after.get(p)) {
        out.push(
          `external ${p}: content ${before.get(p)?.slice(0, 12) ?? "(absent)"} -> ${
            after.get(p)?.slice(0, 12) ?? "(absent)"
          }`,
        );
      }
    }
  }
  return out;
}
