/**
 * Python's string formatting where SpeechBrain's wer.txt depends on it, so our report matches
 * the original byte for byte.
 */

/** `str.center(width)`: CPython puts the odd space on the left only when both the margin and
 * the width are odd. Lengths count code points, as Python's `len` does. */
export function pyCenter(s: string, width: number): string {
  const marg = width - Array.from(s).length;
  if (marg <= 0) return s;
  const left = (marg >> 1) + (marg & width & 1);
  return " ".repeat(left) + s + " ".repeat(marg - left);
}

/**
 * `"{:.2f}".format(x)`: correctly rounded, ties to even. `toFixed` also rounds the exact binary
 * value but breaks exact ties upwards; with two decimals an exact tie is x = k + j/8 for odd j
 * (e.g. 0.125 -> "0.12" in Python, "0.13" from toFixed), handled here.
 */
export function pyFixed2(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (Math.abs(x) < 1e15 && Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const scaled = x * 100; // exact: x = j/8, so scaled = 12.5 j with j odd
    const down = Math.floor(scaled);
    const even = down % 2 === 0 ? down : down + 1;
    return (even / 100).toFixed(2);
  }
  return x.toFixed(2);
}
