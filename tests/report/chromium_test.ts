/**
 * The report page in headless Chromium: it loads with no console error, no uncaught exception and
 * no refused or failed resource, and shows the results table and the training curves. A broken
 * page beside it proves that such problems are seen. Chromium missing is a failure, not a skip
 * (scripts/ensure-toolchain.sh installs it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { HeadlessChromium } from "./headless_chromium.ts";
import { HOSTILE, syntheticReport } from "./fixture.ts";

const CHECKS = {
  title: "document.title",
  scripts: "document.scripts.length",
  resultRows: `[...document.querySelectorAll("#results tbody tr")]
    .map((tr) => [...tr.cells].map((c) => c.textContent))`,
  resultsHeight: `document.querySelector("#results").getBoundingClientRect().height`,
  charts: `[...document.querySelectorAll("svg.chart")].map((s) => {
    const r = s.getBoundingClientRect();
    return { w: r.width, h: r.height, paths: s.querySelectorAll("path.series").length,
      title: s.querySelector("title").textContent };
  })`,
  configComment: `[...document.querySelectorAll("#config tr")]
    .find((tr) => tr.cells[0].textContent === "comment").cells[1].textContent`,
};

Deno.test("report.html in headless Chromium: no console errors, the results table and charts", async () => {
  const chromium = await HeadlessChromium.launch();
  const dir = await Deno.makeTempDir({ prefix: "cm-report-" });
  try {
    const good = join(dir, "report.html");
    await Deno.writeTextFile(good, syntheticReport());
    // The same page with what must be caught: a script and an external image (both refused by the
    // page's Content-Security-Policy), and a page without that policy whose script throws.
    const blocked = join(dir, "blocked.html");
    await Deno.writeTextFile(
      blocked,
      syntheticReport().replace(
        "</body>",
        `<img src="https://example.invalid/x.png" alt=""><script>console.log(1)</script></body>`,
      ),
    );
    const throwing = join(dir, "throwing.html");
    await Deno.writeTextFile(
      throwing,
      `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body>` +
        `<script>console.error("boom"); undefinedFunction();</script></body></html>`,
    );
    const page = await chromium.load(pathToFileURL(good).href, CHECKS);
    assert.deepEqual(page.problems, []);
    const v = page.values;
    assert.equal(v.title, `ConMamba report: synthetic ${HOSTILE}`);
    assert.equal(v.scripts, 0, "the escaped <script> stays text");
    assert.deepEqual(v.resultRows, [
      ["test-clean", "12.50", "10", "3", "2", "120", "20", "3.9", "-", "+8.60"],
      ["test-other", "not scored", "-", "-", "-", "-", "-", "10.3", "-", "-"],
    ]);
    assert.ok((v.resultsHeight as number) > 20, "the table is laid out");
    const charts = v.charts as { w: number; h: number; paths: number; title: string }[];
    assert.deepEqual(charts.map((c) => c.title), [
      "Training loss",
      "Learning rate",
      "Validation loss per epoch",
      "Validation WER / CER / ACC per epoch",
    ]);
    for (const c of charts) assert.ok(c.w > 100 && c.h > 100 && c.paths >= 1, JSON.stringify(c));
    assert.equal(v.configComment, JSON.stringify(HOSTILE));

    const bad = await chromium.load(pathToFileURL(blocked).href);
    assert.ok(bad.problems.some((p) => /inline script/i.test(p)), bad.problems.join("\n"));
    assert.ok(bad.problems.some((p) => /example\.invalid/.test(p)), bad.problems.join("\n"));
    const thrown = await chromium.load(pathToFileURL(throwing).href);
    assert.ok(thrown.problems.includes("console.error: boom"), thrown.problems.join("\n"));
    assert.ok(thrown.problems.some((p) => /uncaught: ReferenceError: undefinedFunction/.test(p)));
  } finally {
    await chromium.close();
    await Deno.remove(dir, { recursive: true });
  }
});
