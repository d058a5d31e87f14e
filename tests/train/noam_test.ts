import assert from "node:assert/strict";
import { lrForUpdate, noamLr } from "../../src/train/noam.ts";

const near = (a: number, b: number) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, b), `${a} vs ${b}`);

Deno.test("Noam schedule: the spec's sanity constants (Appendix A)", () => {
  near(noamLr(1e-3, 25000, 12500), 5e-4); // conmamba_small
  near(noamLr(1e-3, 25000, 25000), 1e-3);
  near(noamLr(1e-3, 25000, 100000), 5e-4);
  near(noamLr(8e-4, 3750, 3750), 8e-4); // conmamba_large
  near(noamLr(8e-4, 3750, 15000), 4e-4);
  near(noamLr(1e-3, 7500, 7500), 1e-3); // CTC
  near(noamLr(1e-3, 7500, 30000), 5e-4);
});

Deno.test("G7: update 1 at the peak, update 2 at peak / W, then the warm-up proper", () => {
  assert.equal(lrForUpdate(8e-4, 3750, 1), 8e-4);
  near(lrForUpdate(8e-4, 3750, 2), 8e-4 / 3750);
  near(lrForUpdate(8e-4, 3750, 3), 2 * 8e-4 / 3750);
});
