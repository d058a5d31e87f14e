/**
 * Headless Chromium driven over the DevTools protocol (a WebSocket on --remote-debugging-port=0):
 * loads a page and reports what went wrong while it loaded (console errors and warnings, uncaught
 * exceptions, log entries such as failed loads and Content-Security-Policy refusals) and the
 * values of expressions evaluated in the loaded page.
 */

export interface PageResult {
  /** Console errors/warnings/asserts, uncaught exceptions, log entries at error/warning level. */
  problems: string[];
  values: Record<string, unknown>;
}

/** $CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH. */
export function findChromium(): string {
  const env = Deno.env.get("CHROMIUM");
  if (env) return env;
  const names = ["chromium", "chromium-browser", "google-chrome"];
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    for (const n of names) {
      try {
        if (Deno.statSync(`${dir}/${n}`).isFile) return `${dir}/${n}`;
      } catch { /* not here */ }
    }
  }
  throw new Error(
    `headless Chromium not found ($CHROMIUM unset, none of ${names.join(", ")} on PATH): ` +
      "install the Debian package chromium (scripts/ensure-toolchain.sh does, `make test` runs it)",
  );
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`headless Chromium: ${what}: no answer in ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class HeadlessChromium {
  #nextId = 1;
  #pending = new Map<number, { resolve(m: Message): void; reject(e: Error): void }>();
  #listeners = new Set<(m: Message) => void>();

  private constructor(
    private readonly child: Deno.ChildProcess,
    private readonly ws: WebSocket,
    private readonly profile: string,
    private readonly stderrDone: Promise<string>,
  ) {
    ws.addEventListener("close", () => {
      for (const p of this.#pending.values()) p.reject(new Error("DevTools connection closed"));
      this.#pending.clear();
    });
    ws.onmessage = (ev) => {
      const m: Message = JSON.parse(ev.data);
      if (m.id !== undefined) {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (m.error) p?.reject(new Error(`DevTools: ${m.error.message}`));
        else p?.resolve(m);
      } else for (const l of this.#listeners) l(m);
    };
  }

  static async launch(timeoutMs = 30_000): Promise<HeadlessChromium> {
    const bin = findChromium();
    const profile = await Deno.makeTempDir({ prefix: "cm-chromium-" });
    const child = new Deno.Command(bin, {
      args: [
        "--headless",
        "--no-sandbox", // tests run as root in CI containers; the page is our own file
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Chromium prints "DevTools listening on ws://..." on stderr; the rest is kept for errors.
    let resolveUrl!: (u: string) => void;
    const url = new Promise<string>((r) => resolveUrl = r);
    const stderrDone = (async () => {
      let text = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) resolveUrl(m[1]);
      }
      return text;
    })();
    let wsUrl: string;
    try {
      wsUrl = await withTimeout(
        Promise.race([
          url,
          child.status.then(async (s) => {
            throw new Error(`${bin} exited (${s.code}) before listening:\n${await stderrDone}`);
          }),
        ]),
        timeoutMs,
        "start",
      );
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await stderrDone;
      await Deno.remove(profile, { recursive: true });
      throw e;
    }
    const ws = new WebSocket(wsUrl);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`cannot connect to ${wsUrl}`));
      }),
      timeoutMs,
      "connect",
    );
    return new HeadlessChromium(child, ws, profile, stderrDone);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Message> {
    const id = this.#nextId++;
    const answer = new Promise<Message>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return withTimeout(answer, 30_000, method);
  }

  /** Opens `url` in a new tab, waits for its load event and a moment more, evaluates `exprs`. */
  async load(url: string, exprs: Record<string, string> = {}): Promise<PageResult> {
    const { result } = await this.send("Target.createTarget", { url: "about:blank" });
    const targetId = result!.targetId as string;
    const attached = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const sessionId = attached.result!.sessionId as string;
    const problems: string[] = [];
    let loaded!: () => void;
    const load = new Promise<void>((r) => loaded = r);
    const listener = (m: Message) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params ?? {};
      if (m.method === "Page.loadEventFired") loaded();
      else if (m.method === "Runtime.consoleAPICalled") {
        const type = p.type as string;
        if (["error", "warning", "assert"].includes(type)) {
          const args = (p.args as { value?: unknown; description?: string }[])
            .map((a) => a.value ?? a.description).join(" ");
          problems.push(`console.${type}: ${args}`);
        }
      } else if (m.method === "Runtime.exceptionThrown") {
        const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
        problems.push(`uncaught: ${d.exception?.description ?? d.text}`);
      } else if (m.method === "Log.entryAdded") {
        const e = p.entry as { level: string; source: string; text: string; url?: string };
        if (e.level === "error" || e.level === "warning") {
          problems.push(`log ${e.level} (${e.source}): ${e.text}${e.url ? ` ${e.url}` : ""}`);
        }
      }
    };
    this.#listeners.add(listener);
    try {
      for (const d of ["Runtime.enable", "Log.enable", "Page.enable"]) {
        await this.send(d, {}, sessionId);
      }
      const nav = await this.send("Page.navigate", { url }, sessionId);
      if (nav.result?.errorText) problems.push(`navigation: ${nav.result.errorText}`);
      else await withTimeout(load, 30_000, `load ${url}`);
      await new Promise((r) => setTimeout(r, 200)); // messages that trail the load event
      const values: Record<string, unknown> = {};
      for (const [name, expression] of Object.entries(exprs)) {
        const r = await this.send(
          "Runtime.evaluate",
          { expression, returnByValue: true },
          sessionId,
        );
        const ex = r.result!.exceptionDetails as { text: string } | undefined;
        if (ex) throw new Error(`evaluating ${name}: ${ex.text}`);
        values[name] = (r.result!.result as { value?: unknown }).value;
      }
      return { problems, values };
    } finally {
      this.#listeners.delete(listener);
      await this.send("Target.closeTarget", { targetId }).catch(() => {});
    }
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.ws.addEventListener("close", () => r()));
    try {
      await this.send("Browser.close");
    } catch { /* the socket may close before the answer */ }
    this.ws.close();
    await withTimeout(closed, 10_000, "close").catch(() => {});
    const exited = await withTimeout(this.child.status, 10_000, "exit").catch(() => null);
    if (!exited) {
      this.child.kill("SIGKILL");
      await this.child.status;
    }
    await this.stderrDone;
    // Helper processes may write the profile for a moment after the browser has exited.
    for (let i = 0;; i++) {
      try {
        await Deno.remove(this.profile, { recursive: true });
        return;
      } catch (e) {
        if (i === 20) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}
