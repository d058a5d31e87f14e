/**
 * A loopback HTTP file server for download tests: serves a directory with Range support and
 * injects one fault per request from a queue (reset mid-body, stall, flipped byte, an error
 * status, or ignoring Range). Listens on 127.0.0.1 only.
 */
import { join } from "node:path";

export type Fault =
  | { kind: "reset"; afterBytes: number }
  | { kind: "stall"; afterBytes: number }
  | { kind: "flip"; at: number }
  | { kind: "status"; code: number }
  | { kind: "ignore-range" };

export interface FaultServer {
  url: string;
  /** Each request seen: path and Range header (null when none). */
  requests: { path: string; range: string | null }[];
  close(): Promise<void>;
}

export function startFaultServer(root: string, faults: Fault[] = []): FaultServer {
  const requests: FaultServer["requests"] = [];
  const pending: ReadableStreamDefaultController<Uint8Array>[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      const range = req.headers.get("range");
      requests.push({ path, range });
      const fault = faults.shift();
      if (fault?.kind === "status") return new Response("injected failure", { status: fault.code });
      let data: Uint8Array<ArrayBuffer>;
      try {
        data = await Deno.readFile(join(root, path));
      } catch {
        return new Response("not found", { status: 404 });
      }
      if (fault?.kind === "flip") {
        data = data.slice();
        data[fault.at] ^= 0xff;
      }
      let start = 0, status = 200;
      const headers = new Headers({ "accept-ranges": "bytes" });
      const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
      if (m && fault?.kind !== "ignore-range") {
        start = Number(m[1]);
        if (start >= data.length) return new Response(null, { status: 416 });
        status = 206;
        headers.set("content-range", `bytes ${start}-${data.length - 1}/${data.length}`);
      }
      const body = data.subarray(start);
      headers.set("content-length", String(body.length));
      if (fault?.kind === "reset" || fault?.kind === "stall") {
        const cut = Math.min(fault.afterBytes, body.length);
        let sent = false;
        const stream = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (!sent) {
              sent = true;
              c.enqueue(body.slice(0, cut));
              return;
            }
            // Let the first bytes reach the client before the fault.
            await new Promise((r) => setTimeout(r, 30));
            if (fault.kind === "reset") c.error(new Error("injected reset"));
            else {
              pending.push(c); // never sends the rest
              await new Promise(() => {});
            }
          },
        });
        return new Response(stream, { status, headers });
      }
      return new Response(body.slice(), { status, headers });
    },
  );
  const addr = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    requests,
    async close() {
      for (const c of pending) {
        try {
          c.error(new Error("server closing"));
        } catch { /* already closed */ }
      }
      ac.abort();
      await server.finished;
    },
  };
}

/** A loopback port with nothing listening (a dead mirror). */
export function deadPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
