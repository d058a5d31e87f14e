import assert from "node:assert/strict";
import { lineChart, niceTicks, type Series, tickFormat } from "../../src/report/svg_chart.ts";

const OPTS = { title: "Training loss", xLabel: "micro-batch", yLabel: "loss" };

/** The (x, y) pairs of every `d` attribute of the series paths. */
function paths(svg: string): [number, number][][] {
  return [...svg.matchAll(/<path class="series"[^>]* d="M([^"]+)"/g)].map((m) =>
    m[1].split("L").map((p) => p.split(" ").map(Number) as [number, number])
  );
}

const circles = (svg: string) => [...svg.matchAll(/<circle class="point"/g)].length;

Deno.test("svg_chart: x grows with the data's x; y on screen falls as the data's y rises", () => {
  const up = Array.from({ length: 20 }, (_, i) => [i, i * i] as [number, number]);
  const down = up.map(([x, y]) => [x, 400 - y] as [number, number]);
  const svg = lineChart([{ name: "up", points: up }, { name: "down", points: down }], OPTS);
  const [a, b] = paths(svg);
  assert.equal(a.length, 20);
  assert.equal(b.length, 20);
  for (let i = 1; i < 20; i++) {
    assert.ok(a[i][0] > a[i - 1][0], "x increasing");
    assert.ok(a[i][1] < a[i - 1][1], "screen y decreasing for a rising series");
    assert.ok(b[i][1] > b[i - 1][1], "screen y increasing for a falling series");
    assert.equal(a[i][0], b[i][0], "same x, same column");
  }
  // Everything inside the viewBox.
  for (const [x, y] of [...a, ...b]) assert.ok(x >= 0 && x <= 640 && y >= 0 && y <= 300);
});

Deno.test("svg_chart: title, axis labels, legend and tick labels are present", () => {
  const svg = lineChart([{ name: "validation WER", points: [[1, 90], [2, 50], [3, 30]] }], OPTS);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>$/);
  assert.match(svg, /<title>Training loss<\/title>/);
  assert.match(svg, />micro-batch<\/text>/);
  assert.match(svg, />loss<\/text>/);
  assert.match(svg, /class="legend">validation WER<\/text>/);
  const ticks = [...svg.matchAll(/class="tick">([^<]*)</g)].map((m) => m[1]);
  for (const t of ["30", "50", "70", "90", "1.0", "1.5", "3.0"]) {
    assert.ok(ticks.includes(t), `tick ${t} in ${ticks}`);
  }
});

Deno.test("svg_chart: text is escaped", () => {
  const svg = lineChart([{ name: `<b>"x" & y</b>`, points: [[0, 1], [1, 2]] }], {
    title: "a<script>alert(1)</script>",
    xLabel: "x & y",
    yLabel: `"quoted"`,
  });
  assert.ok(!svg.includes("<script>") && !svg.includes("<b>"));
  assert.match(svg, /a&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(svg, /&lt;b&gt;&quot;x&quot; &amp; y&lt;\/b&gt;/);
  assert.match(svg, />x &amp; y</);
  assert.match(svg, /data-series="&lt;b&gt;&quot;x&quot; &amp; y&lt;\/b&gt;"/);
});

Deno.test("svg_chart: no series, or only non-finite points, say no data", () => {
  const cases: Series[][] = [
    [],
    [{ name: "s", points: [] }],
    [{ name: "nan", points: [[0, NaN], [Infinity, 1], [2, -Infinity]] }],
  ];
  for (const series of cases) {
    const svg = lineChart(series, OPTS);
    assert.match(svg, /class="no-data">no data</);
    assert.equal(paths(svg).length, 0);
    assert.equal(circles(svg), 0);
    assert.ok(!svg.includes("NaN"));
  }
});

Deno.test("svg_chart: a single point is a dot inside the plot; NaN breaks a line", () => {
  const one = lineChart([{ name: "s", points: [[3, 0.5]] }], OPTS);
  assert.equal(paths(one).length, 0);
  assert.equal(circles(one), 1);
  assert.ok(!one.includes("NaN") && !one.includes("Infinity"));
  const [, cx, cy] = one.match(/cx="([\d.]+)" cy="([\d.]+)"/)!.map(Number);
  assert.ok(cx > 70 && cx < 624 && cy > 48 && cy < 254, `${cx} ${cy} inside the plot`);

  const gap = lineChart([{
    name: "s",
    points: [[0, 1], [1, NaN], [2, 3], [3, 4], [4, 5], [5, Infinity], [6, 2]],
  }], OPTS);
  assert.deepEqual(paths(gap).map((p) => p.length), [3]);
  assert.equal(circles(gap), 2, "the isolated points at x=0 and x=6");
  assert.ok(!gap.includes("NaN"));
});

Deno.test("svg_chart: ticks are 1, 2 or 5 x 10^k and cover the range; labels need no more digits", () => {
  for (const [lo, hi] of [[0, 97], [0.0001, 0.0021], [-3.2, 7.9], [1, 15], [12345, 12346]]) {
    const { ticks, step } = niceTicks(lo, hi);
    assert.ok(ticks[0] <= lo && ticks[ticks.length - 1] >= hi, `${ticks} covers ${lo}..${hi}`);
    assert.ok(ticks.length >= 3 && ticks.length <= 12, `${ticks}`);
    const mant = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-9), `step ${step}`);
  }
  assert.deepEqual(niceTicks(0, 97).ticks, [0, 20, 40, 60, 80, 100]);
  assert.equal(tickFormat(0.0002, 0.002)(0.0014000000000000002), "0.0014");
  assert.equal(tickFormat(0.5, 2)(-0.0000001), "0.0");
  assert.equal(tickFormat(20, 100)(60), "60");
  assert.equal(tickFormat(0.00001, 0.0001)(0.00003), "3e-5");
});
