/**
 * Loading an experiment: `hparams/<name>.yaml` + command-line overrides -> one frozen Experiment.
 *
 * Every failure is a ConfigError whose one-line message names the file, the key, the value and
 * what was expected, so the CLI can print it and exit with status 2. Nothing here writes.
 */
import { basename, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import {
  CONFIG_KEYS,
  type ConfigKey,
  type Experiment,
  ExperimentFields,
  ExperimentSchema,
} from "./experiment.ts";

/** A configuration mistake the user can fix; the CLI prints the message and exits with 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The repository's hparams/ folder. */
const DEFAULT_DIR = fileURLToPath(new URL("../../hparams/", import.meta.url));

const KEY_SET: ReadonlySet<string> = new Set(CONFIG_KEYS);

/** Sorted names (without .yaml) of the experiment files in `dir` (default: the repo's hparams/). */
export function listExperiments(dir: string = DEFAULT_DIR): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    throw new ConfigError(`${display(dir)}: cannot list experiments (${errorText(e)})`);
  }
  return entries
    .filter((d) => d.isFile && d.name.endsWith(".yaml"))
    .map((d) => d.name.slice(0, -".yaml".length))
    .sort();
}

/**
 * Reads `--key value` and `--key=value` pairs into a map of raw strings (typed later, by
 * loadExperiment). Anything else, a missing value or a key given twice is a ConfigError.
 */
export function parseOverrides(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(arg);
    if (m === null) {
      throw new ConfigError(
        `command line: expected an override --key value or --key=value, got ${quote(arg)}`,
      );
    }
    const key = m[1];
    let value = m[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new ConfigError(`command line: override --${key} has no value`);
      }
      value = next;
      i++;
    }
    if (Object.hasOwn(out, key)) {
      throw new ConfigError(`command line: override --${key} is given twice`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Reads `<dir>/<name>.yaml`, applies the overrides (each parsed as a YAML scalar or flow
 * sequence: "0.5" is a number, "true" a boolean, "null" null, "[95, 100]" a list), validates the
 * result against ExperimentSchema and returns it deeply frozen.
 *
 * @param name experiment name, i.e. a file name in `dir` without `.yaml`
 * @param overrides raw `key -> value` strings, as parseOverrides returns them
 * @param opts.dir folder of the experiment files (default: the repository's hparams/)
 */
export function loadExperiment(
  name: string,
  overrides: Record<string, string> = {},
  opts: { dir?: string } = {},
): Experiment {
  const dir = opts.dir ?? DEFAULT_DIR;
  const available = listExperiments(dir);
  if (!available.includes(name)) {
    throw new ConfigError(
      `unknown experiment ${quote(name)} (no ${display(join(dir, `${name}.yaml`))}); ` +
        `available: ${available.join(", ") || "none"}`,
    );
  }
  const path = join(dir, `${name}.yaml`);
  const file = display(path);
  const raw = readMapping(path, file);

  for (const key of Object.keys(raw)) {
    if (!KEY_SET.has(key)) {
      throw new ConfigError(`${file}: unknown key ${quote(key)} (did you mean "${nearest(key)}"?)`);
    }
  }
  const merged: Record<string, unknown> = { ...raw };
  for (const [key, text] of Object.entries(overrides)) {
    if (!KEY_SET.has(key)) {
      throw new ConfigError(
        `${file}: unknown override --${key} (did you mean --${nearest(key)}?)`,
      );
    }
    merged[key] = overrideValue(key as ConfigKey, text, file);
  }
  const missing = CONFIG_KEYS.filter((k) => !Object.hasOwn(merged, k));
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : "";
    throw new ConfigError(
      `${file}: key ${quote(missing[0])} is missing${more}; every experiment file sets every key`,
    );
  }

  const result = ExperimentSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(describeIssue(result.error.issues, merged, overrides, file));
  }
  return deepFreeze(result.data);
}

/** Parses a YAML file that must hold one flat mapping; YAML errors carry line and column. */
function readMapping(path: string, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${errorText(e)})`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const pos = lines.linePos(problem.pos[0]);
    const where = `${file}:${pos.line}:${pos.col}`;
    throw new ConfigError(`${where}: malformed YAML: ${firstLine(problem.message)}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${file}: expected a mapping of key: value lines, got ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Types an override string as YAML would. A key that takes text keeps the raw string when the
 * YAML reading does not fit (`--experiment 123` names an experiment "123").
 */
function overrideValue(key: ConfigKey, text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    throw new ConfigError(
      `${file}: override --${key}: ${quote(text)} is not a YAML value (${
        firstLine(problem.message)
      })`,
    );
  }
  const value: unknown = doc.toJS();
  const field = ExperimentFields.shape[key] as z.ZodType;
  if (typeof value !== "string" && !field.safeParse(value).success) {
    if (field.safeParse(text).success) return text;
  }
  return value;
}

function describeIssue(
  issues: readonly z.core.$ZodIssue[],
  merged: Record<string, unknown>,
  overrides: Record<string, string>,
  file: string,
): string {
  const issue = issues[0];
  const key = String(issue.path[0] ?? "");
  const field = (ExperimentFields.shape as Record<string, z.ZodType>)[key];
  let expected = issue.message;
  if (issue.code !== "custom" && field?.safeParse(null).success) expected += " or null";
  const source = Object.hasOwn(overrides, key) ? ` (from --${key})` : "";
  const more = issues.length > 1 ? ` (${issues.length - 1} more problem(s) after this one)` : "";
  return `${file}: key ${quote(key)}${source}: ${expected}, got ${show(merged[key])}${more}`;
}

/** The valid key closest to `key` by edit distance (ties: the first in schema order). */
function nearest(key: string): string {
  let best = CONFIG_KEYS[0] as string;
  let bestDistance = Infinity;
  for (const k of CONFIG_KEYS) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(prev[j] + 1, row[j - 1] + 1, substitution));
    }
    prev = row;
  }
  return prev[b.length];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A path as the user should see it: relative to the working directory when inside it. */
function display(path: string): string {
  const rel = relative(Deno.cwd(), path);
  if (rel === "") return basename(path);
  return rel.startsWith("..") || isAbsolute(rel) ? path : rel;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

/** A value in an error message: JSON, shortened to keep the message on one readable line. */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number") return String(value);
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function firstLine(s: string): string {
  return s.split("\n")[0].trim();
}

function errorText(e: unknown): string {
  return e instanceof Error ? firstLine(e.message) : String(e);
}
