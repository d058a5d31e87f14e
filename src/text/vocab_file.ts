/**
 * The vocabulary listing spm_train writes beside a model (X.vocab, our vocab.txt): one line per
 * piece, "piece<TAB>score", the score as C++ streams print a float (%g: 6 significant digits).
 */
import type { TokenizerModel } from "./model.ts";

export function formatVocab(model: TokenizerModel): string {
  return model.pieces.map((p) => `${p.piece}\t${formatG(p.score)}\n`).join("");
}

/** printf("%g", x): 6 significant digits, exponent form below 1e-4 or from 1e6, no trailing 0s. */
export function formatG(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const [mantissa, exp] = x.toExponential(5).split("e");
  const e = Number(exp);
  const trim = (s: string) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (e < -4 || e >= 6) {
    return `${trim(mantissa)}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  return trim(x.toFixed(5 - e));
}
