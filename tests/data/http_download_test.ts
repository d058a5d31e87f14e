import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DownloadError, downloadVerified } from "../../src/data/http_download.ts";
import { exists } from "../../src/pipeline/fs_util.ts";
import { deadPort, type Fault, startFaultServer } from "./fault_server.ts";

const SIZE = 300_000;

async function fixture(faults: Fault[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "cm-dl-" });
  const data = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 2654435761) >>> 24;
  await Deno.mkdir(join(dir, "srv"));
  await Deno.writeFile(join(dir, "srv", "dev-clean.tar.gz"), data);
  const server = startFaultServer(join(dir, "srv"), faults);
  const md5 = createHash("md5").update(data).digest("hex");
  const spec = {
    mirrors: [server.url],
    file: "dev-clean.tar.gz",
    dest: join(dir, "dev-clean.tar.gz"),
    size: SIZE,
    md5,
  };
  const done = async () => {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, data, server, spec, done };
}

const fast = { backoffMs: 1, stallMs: 500 };

Deno.test("download: plain fetch, verified, progress reported in bytes", async () => {
  const f = await fixture();
  const seen: number[] = [];
  await downloadVerified(f.spec, { ...fast, onProgress: (d) => seen.push(d) });
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  assert.equal(seen.at(-1), SIZE);
  assert.equal(await exists(f.spec.dest + ".part"), false);
  // Already there and intact: no request at all.
  await downloadVerified(f.spec, fast);
  assert.equal(f.server.requests.length, 1);
  await f.done();
});

Deno.test("download: a connection reset mid-body resumes with a Range request", async () => {
  const f = await fixture([{ kind: "reset", afterBytes: 100_000 }]);
  const retries: string[] = [];
  await downloadVerified(f.spec, { ...fast, onRetry: (r) => retries.push(r) });
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  assert.equal(f.server.requests.length, 2);
  assert.equal(f.server.requests[0].range, null);
  const m = /^bytes=(\d+)-$/.exec(f.server.requests[1].range ?? "");
  assert.ok(m && Number(m[1]) > 0 && Number(m[1]) <= 100_000, f.server.requests[1].range ?? "");
  assert.equal(retries.length, 1);
  await f.done();
});

Deno.test("download: a stalled response is aborted and resumed", async () => {
  const f = await fixture([{ kind: "stall", afterBytes: 50_000 }]);
  const retries: string[] = [];
  await downloadVerified(f.spec, { ...fast, onRetry: (r) => retries.push(r) });
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  assert.match(retries[0], /stalled for 500 ms/);
  assert.match(f.server.requests[1].range ?? "", /^bytes=\d+-$/);
  await f.done();
});

Deno.test("download: a corrupted body fails MD5 and is fetched again from scratch", async () => {
  const f = await fixture([{ kind: "flip", at: 12345 }]);
  const retries: string[] = [];
  await downloadVerified(f.spec, { ...fast, onRetry: (r) => retries.push(r) });
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  assert.match(retries[0], /MD5 [0-9a-f]{32}, expected/);
  assert.equal(f.server.requests[1].range, null, "a corrupt part is discarded, not resumed");
  await f.done();
});

Deno.test("download: a dead mirror and an HTTP 500 fall through to a working mirror", async () => {
  const f = await fixture([{ kind: "status", code: 500 }]);
  const retries: string[] = [];
  const spec = { ...f.spec, mirrors: [`http://127.0.0.1:${deadPort()}`, f.server.url] };
  await downloadVerified(spec, { ...fast, onRetry: (r) => retries.push(r) });
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  assert.equal(retries.length, 3); // dead mirror, 500, dead mirror again
  assert.match(retries[1], /HTTP 500/);
  await f.done();
});

Deno.test("download: a server that ignores Range makes the client start over", async () => {
  const f = await fixture([{ kind: "reset", afterBytes: 80_000 }, { kind: "ignore-range" }]);
  await downloadVerified(f.spec, fast);
  assert.deepEqual(await Deno.readFile(f.spec.dest), f.data);
  await f.done();
});

Deno.test("download: an MD5 mismatch that persists fails clearly and leaves no file", async () => {
  const f = await fixture();
  const spec = { ...f.spec, md5: "0".repeat(32) };
  await assert.rejects(
    downloadVerified(spec, { ...fast, maxAttempts: 3 }),
    (e: unknown) =>
      e instanceof DownloadError &&
      /dev-clean\.tar\.gz: failed after 3 attempts; last error: .*MD5 [0-9a-f]{32}, expected 0{32}/
        .test(e.message),
  );
  assert.equal(await exists(spec.dest), false);
  assert.equal(await exists(spec.dest + ".part"), false);
  assert.equal(f.server.requests.length, 3);
  await f.done();
});
