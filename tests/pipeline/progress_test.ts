import assert from "node:assert/strict";
import { createProgress, fmtDuration } from "../../src/pipeline/progress.ts";

function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("not a terminal: one plain line per interval and one at the end, no control codes", () => {
  const out: string[] = [];
  const clock = fakeClock();
  const p = createProgress({
    tty: false,
    write: (s) => out.push(s),
    intervalMs: 10_000,
    now: clock.now,
  });
  const bar = p.bar("download dev-clean", { total: 4_000_000, unit: "bytes" });
  for (let i = 0; i < 40; i++) {
    clock.advance(1000);
    bar.add(100_000); // 100 KB/s
  }
  bar.finish();
  assert.equal(out.length, 5, out.join("")); // at 10, 20, 30, 40 s, and the final line
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\x1b") && !l.includes("\r")));
  assert.match(out[0], /download dev-clean 25\.0% 1\.0 MB\/4\.0 MB 100\.0 KB\/s ETA 0:30/);
  assert.match(out[4], /100\.0% .* ETA 0:00/);
});

Deno.test("terminal: a redrawn bar with rate and ETA; log lines clear it first", () => {
  const out: string[] = [];
  const clock = fakeClock();
  const p = createProgress({
    tty: true,
    write: (s) => out.push(s),
    intervalMs: 100,
    now: clock.now,
  });
  const bar = p.bar("train", { total: 100, unit: "steps" });
  clock.advance(2000);
  bar.add(10);
  assert.equal(out.at(-1), `\r\x1b[2K  train [##${" ".repeat(22)}] 10.0% 10/100 5/s ETA 0:18`);
  p.log("epoch 1 done");
  assert.equal(out.at(-2), "\r\x1b[2K");
  assert.equal(out.at(-1), "epoch 1 done\n");
  bar.finish();
  assert.equal(out.at(-1), "\n");
});

Deno.test("durations print as m:ss or h:mm:ss", () => {
  assert.equal(fmtDuration(5), "0:05");
  assert.equal(fmtDuration(3725), "1:02:05");
  assert.equal(fmtDuration(Infinity), "--:--");
});
