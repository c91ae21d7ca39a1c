import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `soglasie portal --demo` as its own node process, one of several on one database. */
export interface PortalProcess {
  name: string;
  child: ChildProcess;
  url: string;
  mtlsUrl: string;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts a portal instance as its own node process (no npx wrapper, so signals reach it)
 * on the given ports and waits until it listens. Scale-out tests start two on one
 * PostgreSQL database.
 */
export async function startPortalProcess(
  name: string,
  ports: { http: number; mtls: number },
  env: Record<string, string>,
): Promise<PortalProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'portal', '--demo'], {
    cwd: ROOT,
    env: {
      PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      PORTAL_HTTP_PORT: String(ports.http),
      PORTAL_MTLS_PORT: String(ports.mtls),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('portal listening on')) {
    if (child.exitCode !== null) throw new Error(`portal ${name} exited early:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`portal ${name} did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    child,
    url: `http://localhost:${ports.http}`,
    mtlsUrl: `https://localhost:${ports.mtls}`,
    output: () => out,
    exited,
  };
}

/** SIGTERM (after SIGCONT, in case a test paused it), SIGKILL after 10 s. */
export async function stopPortalProcess(instance: PortalProcess | undefined): Promise<void> {
  if (!instance || instance.child.exitCode !== null || instance.child.signalCode !== null) return;
  instance.child.kill('SIGCONT');
  instance.child.kill('SIGTERM');
  const timer = setTimeout(() => instance.child.kill('SIGKILL'), 10_000);
  await instance.exited;
  clearTimeout(timer);
}
