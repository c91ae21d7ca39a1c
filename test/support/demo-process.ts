import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface DemoProcess {
  child: ChildProcess;
  portalUrl: string;
  bankUrl: string;
  output: () => string;
  /** Sends SIGINT (Ctrl-C) and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `soglasie <args>` as a separate process, exactly as a person would. */
export function runCli(args: string[], env: Record<string, string>) {
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['src/cli.ts', ...args], {
    cwd: ROOT,
    env: {
      PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: process.env.HOME ?? '/tmp',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `n` different ports nothing listens on right now: all are held open together before
 * any is released, so the OS cannot hand out the same one twice.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => net.createServer());
  await Promise.all(
    servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Ports for a demo: the issuer and redirect URIs contain them, so they are fixed up front. */
export async function demoPorts(): Promise<Record<string, string>> {
  const [portal, mtls, bank] = await freePorts(3);
  return {
    PORTAL_HTTP_PORT: String(portal),
    PORTAL_MTLS_PORT: String(mtls),
    BANK_HTTP_PORT: String(bank),
  };
}

/** Starts the demo and waits until it has printed its addresses. */
export async function startDemo(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<DemoProcess> {
  const run = runCli(['demo'], { ...(await demoPorts()), ...env });
  const deadline = Date.now() + timeoutMs;
  while (!run.output().includes('Press Ctrl-C to stop.')) {
    if (run.child.exitCode !== null) throw new Error(`demo exited early:\n${run.output()}`);
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`demo did not start in ${timeoutMs} ms:\n${run.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const urls = [...run.output().matchAll(/(http:\/\/localhost:\d+)/g)].map((m) => m[1]!);
  return {
    child: run.child,
    portalUrl: urls[0]!,
    bankUrl: urls[1]!,
    output: run.output,
    stop: async () => {
      run.child.kill('SIGINT');
      return run.exited;
    },
  };
}

/** A tiny cookie-keeping HTTP client for journeys over real sockets. */
export class HttpClient {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async request(
    url: string,
    init: { method?: string; form?: Record<string, string> | URLSearchParams } = {},
  ) {
    const res = await fetch(new URL(url, this.base), {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        accept: 'text/html',
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: init.form ? new URLSearchParams(init.form).toString() : undefined,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, value] = pair!.split('=');
      if (value) this.cookies.set(name!, value);
      else this.cookies.delete(name!);
    }
    return { status: res.status, location: res.headers.get('location'), body: await res.text() };
  }

  static csrf(html: string): string {
    return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  }
}
