/**
 * Progress reporting. On a terminal: one redrawn bar with rate and ETA. Elsewhere (CI logs,
 * pipes): a plain line every `intervalMs` (default 10 s, env CONMAMBA_PROGRESS_INTERVAL_MS) and
 * one at the end, so logs stay short but show that work is moving.
 */
export interface ProgressBar {
  /** Add `n` units of work done. */
  add(n: number): void;
  /** Set the amount of work done. */
  set(done: number): void;
  /** Change the label shown (e.g. the current file or loss). */
  note(text: string): void;
  finish(): void;
}

export interface Progress {
  bar(label: string, opts?: { total?: number; unit?: "bytes" | "items" | "steps" }): ProgressBar;
  log(message: string): void;
}

type Write = (s: string) => void;

export function createProgress(
  opts: { tty?: boolean; write?: Write; intervalMs?: number; now?: () => number } = {},
): Progress {
  const write: Write = opts.write ??
    ((s) => Deno.stderr.writeSync(new TextEncoder().encode(s)));
  const tty = opts.tty ?? Deno.stderr.isTerminal();
  const intervalMs = opts.intervalMs ??
    Number(Deno.env.get("CONMAMBA_PROGRESS_INTERVAL_MS") ?? (tty ? 100 : 10_000));
  const now = opts.now ?? (() => performance.now());
  let active: { clear(): void } | null = null;

  return {
    log(message) {
      active?.clear();
      write(message + "\n");
    },
    bar(label, { total, unit = "items" } = {}) {
      const t0 = now();
      let done = 0;
      let lastDraw = -Infinity;
      let text = "";
      let closed = false;
      const render = () => {
        const dt = Math.max((now() - t0) / 1000, 1e-9);
        const rate = done / dt;
        let s = `  ${label}`;
        if (total !== undefined && total > 0) {
          const frac = Math.min(done / total, 1);
          const width = 24;
          const full = Math.round(frac * width);
          const eta = rate > 0 ? (total - done) / rate : Infinity;
          s += tty ? ` [${"#".repeat(full)}${" ".repeat(width - full)}]` : "";
          s += ` ${(frac * 100).toFixed(1)}% ${fmtAmount(done, unit)}/${fmtAmount(total, unit)}`;
          s += ` ${fmtAmount(rate, unit)}/s ETA ${fmtDuration(eta)}`;
        } else {
          s += ` ${fmtAmount(done, unit)} ${fmtAmount(rate, unit)}/s`;
        }
        if (text) s += ` ${text}`;
        return s;
      };
      const draw = (force: boolean) => {
        const t = now();
        if (!force && t - lastDraw < intervalMs) return;
        lastDraw = t;
        if (tty) write(`\r\x1b[2K${render()}`);
        else write(render() + "\n");
      };
      const handle = {
        clear() {
          if (tty) write("\r\x1b[2K");
        },
      };
      active = handle;
      if (!tty) lastDraw = t0; // plain mode: first line after one interval, not at once
      return {
        add(n) {
          done += n;
          draw(false);
        },
        set(d) {
          done = d;
          draw(false);
        },
        note(t) {
          text = t;
          draw(false);
        },
        finish() {
          if (closed) return;
          closed = true;
          draw(true);
          if (tty) write("\n");
          if (active === handle) active = null;
        },
      };
    },
  };
}

export function fmtAmount(x: number, unit: "bytes" | "items" | "steps"): string {
  if (unit !== "bytes") return Number.isInteger(x) ? String(x) : x.toFixed(1);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A Progress that prints nothing (library use, tests). */
export const silentProgress: Progress = {
  bar: () => ({ add() {}, set() {}, note() {}, finish() {} }),
  log() {},
};
