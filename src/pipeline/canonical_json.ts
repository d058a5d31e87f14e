/**
 * Canonical JSON: the one serialisation that goes into hashes.
 *
 * Object keys are sorted by UTF-16 code units, no whitespace, numbers as JavaScript prints them.
 * Values that JSON cannot carry faithfully (NaN, Infinity, undefined, functions, bigint) throw,
 * so two configurations that print the same always hash the same and vice versa.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function canonicalJson(value: unknown): string {
  return encode(value, "$");
}

function encode(value: unknown, path: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`canonical JSON: ${path} is ${value}, which JSON cannot represent`);
      }
      // -0 and 0 must hash alike: JSON.stringify(-0) is "0".
      return JSON.stringify(value);
    case "string":
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        return "[" + value.map((v, i) => encode(v, `${path}[${i}]`)).join(",") + "]";
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        if (obj[k] === undefined) {
          throw new TypeError(`canonical JSON: ${path}.${k} is undefined`);
        }
        parts.push(JSON.stringify(k) + ":" + encode(obj[k], `${path}.${k}`));
      }
      return "{" + parts.join(",") + "}";
    }
    default:
      throw new TypeError(`canonical JSON: ${path} has type ${typeof value}`);
  }
}
