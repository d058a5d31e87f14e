/**
 * Loading and saving a module tree's state_dict as safetensors. Loading checks every name, shape
 * and dtype and reports all problems in one error. It also accepts the original checkpoint's
 * index-prefixed names (CONMAMBA_SPEC.md 5.1: 0.* = CNN, 1.* = Transformer, then seq_lin / ctc_lin).
 */
import {
  readSafetensors,
  type SafeTensor,
  type SafeTensorsFile,
  writeSafetensors,
} from "../io/safetensors.ts";
import type { Module } from "./module.ts";

export class StateDictError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(
      `${file}: ${problems.length} problem(s) with the checkpoint:\n  ${problems.join("\n  ")}`,
    );
  }
}

/** The top-level module names in the original's ModuleList order (S2S or CTC). */
export function indexPrefixes(model: Module): string[] {
  return [...model.namedModules()].filter(([n]) => n !== "" && !n.includes(".")).map(([n]) => n);
}

/** Maps "0.x" -> "CNN.x" etc. when every key of the file is index-prefixed. */
function renameIndexed(names: string[], prefixes: string[]): Map<string, string> | null {
  if (!names.every((n) => /^\d+\./.test(n))) return null;
  const map = new Map<string, string>();
  for (const n of names) {
    const i = Number(n.slice(0, n.indexOf(".")));
    map.set(n, i < prefixes.length ? `${prefixes[i]}${n.slice(n.indexOf("."))}` : n);
  }
  return map;
}

/**
 * Copies `file`'s tensors into the model's parameters and buffers. Throws one StateDictError
 * listing every missing, unexpected, mis-shaped or non-F32 tensor; nothing is written then.
 */
export function loadStateDict(model: Module, file: SafeTensorsFile, fileName: string): void {
  const own = new Map(model.stateDict());
  const rename = renameIndexed([...file.tensors.keys()], indexPrefixes(model));
  const given = new Map<string, [string, SafeTensor]>();
  for (const [n, t] of file.tensors) given.set(rename?.get(n) ?? n, [n, t]);
  const problems: string[] = [];
  for (const [name, t] of own) {
    const g = given.get(name);
    if (!g) {
      problems.push(`missing: "${name}" [${t.shape}]`);
      continue;
    }
    const [orig, st] = g;
    if (st.dtype !== "F32") problems.push(`wrong dtype: "${orig}" is ${st.dtype}, expected F32`);
    if (st.shape.join() !== t.shape.join()) {
      problems.push(`wrong shape: "${orig}" is [${st.shape}], expected [${t.shape}]`);
    }
  }
  for (const [name, [orig, st]] of given) {
    if (!own.has(name)) problems.push(`unexpected: "${orig}" [${st.shape}]`);
  }
  if (problems.length > 0) throw new StateDictError(fileName, problems);
  for (const [name, t] of own) {
    const data = given.get(name)![1].data as Float32Array;
    t.backend.upload(t.storage, data);
  }
}

export async function loadStateDictFile(model: Module, path: string): Promise<void> {
  loadStateDict(model, await readSafetensors(path), path);
}

/** The model's state_dict as safetensors tensors (float32). */
export function stateDictTensors(model: Module): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const [n, t] of model.stateDict()) {
    out.set(n, { dtype: "F32", shape: [...t.shape], data: t.toArray() });
  }
  return out;
}

export async function saveStateDictFile(
  model: Module,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(path, stateDictTensors(model), metadata);
}
