// Debian's headless Chromium (/usr/bin/chromium) driven through the DevTools
// protocol over a WebSocket (undici's): open a page, evaluate an expression in
// it (reading the page's own DOM), take a screenshot. Chromium runs in its own
// process group with a fresh profile directory; close() stops it by PID
// (SIGTERM, then SIGKILL of the group) and removes the profile, whatever
// happened. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request, WebSocket } from 'undici';

export const CHROMIUM = '/usr/bin/chromium';

const START_MS_MAX = 20_000;
const CALL_MS_MAX = 10_000;

export interface Page {
  readonly pid: number;
  /** The value of a JavaScript expression in the page (awaited when it is a promise); throws what the page threw. */
  evaluate<T>(expression: string): Promise<T>;
  /** Waits until `expression` is truthy in the page, polling; returns its value or throws with the last one. */
  waitFor<T>(what: string, expression: string, timeoutMs: number): Promise<T>;
  /** A PNG of the whole page (its full height at `width` CSS pixels). */
  screenshot(file: string, width?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ChromiumOptions {
  /** Trust a server certificate with this public key (base64 SHA-256 of its SPKI), and no other unknown one. */
  trustSpki?: string[];
  windowSize?: [number, number];
}

/** Starts Chromium on `url` and connects to that page's DevTools endpoint. */
export async function openPage(url: string, opts: ChromiumOptions = {}): Promise<Page> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-chromium-'));
  const [w, h] = opts.windowSize ?? [1280, 900];
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio',
    `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--window-size=${w},${h}`,
    ...(opts.trustSpki && opts.trustSpki.length > 0 ? [`--ignore-certificate-errors-spki-list=${opts.trustSpki.join(',')}`] : []),
    url,
  ];
  const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  let ws: WebSocket | null = null;
  const stop = async () => {
    ws?.close();
    await stopGroup(child);
    fs.rmSync(profile, { recursive: true, force: true });
  };
  try {
    const browserUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium did not open its DevTools port within ${START_MS_MAX} ms:\n${stderr.slice(-2000)}`)), START_MS_MAX);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m !== null) { clearTimeout(timer); resolve(m[1]); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`chromium exited (${code ?? signal}):\n${stderr.slice(-2000)}`)); });
      child.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const http = `http://${new URL(browserUrl).host}`;
    const end = Date.now() + START_MS_MAX;
    let target: { type: string; url: string; webSocketDebuggerUrl: string } | undefined;
    let lastListError = '';
    while (target === undefined && Date.now() < end) {
      // A busy machine can keep Chromium's DevTools HTTP from answering for
      // seconds: a slow or failed poll is tried again until START_MS_MAX.
      try {
        const r = await request(`${http}/json/list`, { signal: AbortSignal.timeout(5000) });
        const list = (await r.body.json()) as { type: string; url: string; webSocketDebuggerUrl: string }[];
        target = list.find((t) => t.type === 'page');
      } catch (e) {
        lastListError = e instanceof Error ? e.message : String(e);
      }
      if (target === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    if (target === undefined) throw new Error(`chromium shows no page target within ${START_MS_MAX} ms${lastListError === '' ? '' : ` (last: ${lastListError})`}`);
    const socket = new WebSocket(target.webSocketDebuggerUrl);
    ws = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no DevTools WebSocket within 5 s')), 5000);
      socket.addEventListener('open', () => { clearTimeout(timer); resolve(); });
      socket.addEventListener('error', () => { clearTimeout(timer); reject(new Error('DevTools WebSocket failed')); });
    });
    const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
    socket.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message)); else p?.resolve(msg.result ?? {});
    });
    socket.addEventListener('close', () => { for (const p of pending.values()) p.reject(new Error('DevTools WebSocket closed')); pending.clear(); });
    let nextId = 1;
    const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${method}: no answer within ${CALL_MS_MAX} ms`)); }, CALL_MS_MAX);
      pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      socket.send(JSON.stringify({ id, method, params }));
    });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await call('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
      const ex = r.exceptionDetails as { text?: string; exception?: { description?: string } } | undefined;
      if (ex !== undefined) throw new Error(`in the page: ${ex.exception?.description ?? ex.text ?? 'exception'}`);
      return (r.result as { value?: T }).value as T;
    };
    return {
      pid: child.pid!,
      evaluate,
      async waitFor<T>(what: string, expression: string, timeoutMs: number): Promise<T> {
        const until = Date.now() + timeoutMs;
        let last: unknown;
        while (Date.now() < until) {
          try { last = await evaluate<T>(expression); if (last) return last as T; } catch (e) { last = e; }
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
      },
      async screenshot(file: string, width = w) {
        const m = await call('Page.getLayoutMetrics');
        const size = (m.cssContentSize ?? m.contentSize) as { height: number };
        await call('Emulation.setDeviceMetricsOverride', { width, height: Math.ceil(size.height), deviceScaleFactor: 1, mobile: false });
        const shot = await call('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
        await call('Emulation.clearDeviceMetricsOverride');
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, Buffer.from(shot.data as string, 'base64'));
      },
      close: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** SIGTERM to Chromium's process group (it was started detached: its group is its PID), then SIGKILL after 3 s. */
async function stopGroup(child: ChildProcess): Promise<void> {
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = (ms: number) => new Promise<void>((resolve) => {
    if (gone()) return resolve();
    const t = setTimeout(resolve, ms);
    child.once('exit', () => { clearTimeout(t); resolve(); });
  });
  if (child.pid === undefined) return;
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
  await exited(3000);
  // The renderers and the zygote too, even when the browser itself is gone.
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  await exited(2000);
}
