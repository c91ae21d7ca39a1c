import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LoadMessage, LoadResult, LoadSpec } from './load.js';

/** The server side of a measured window: this process serves, the child loads. */
export interface ServerSide {
  /** Event-loop utilization of the serving process (1 = the loop never idled). */
  elu: number;
  /** CPU time of the serving process per 2xx response, microseconds (all threads). */
  cpuPerRequestUs: number;
}

export type Measured = LoadResult & ServerSide;

const children = new Set<ChildProcess>();

/** Kills load generators still running (the watchdog and Ctrl-C use it). */
export function killLoadGenerators(): void {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * Runs bench/load.ts in a child process (tsx's loader is inherited through execArgv) and
 * measures this process while the child's measured window is open.
 */
export function runLoad(spec: LoadSpec): Promise<Measured> {
  const limitMs = (spec.warmupS + spec.durationS) * 1000 + 20_000;
  return new Promise((resolve, reject) => {
    const child = fork(path.join(import.meta.dirname, 'load.ts'), [], {
      env: { ...process.env, BENCH_LOAD_SPEC: JSON.stringify(spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    let elu0 = performance.eventLoopUtilization();
    let cpu0 = process.cpuUsage();
    let settled = false;
    const finish = (err: Error | undefined, value?: Measured) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      children.delete(child);
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(
      () => finish(new Error(`load generator did not finish in ${limitMs / 1000} s`)),
      limitMs,
    );
    child.on('message', (message: LoadMessage) => {
      if (message.type === 'measuring') {
        elu0 = performance.eventLoopUtilization();
        cpu0 = process.cpuUsage();
        return;
      }
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const cpu = process.cpuUsage(cpu0);
      const { result } = message;
      finish(undefined, {
        ...result,
        elu,
        cpuPerRequestUs: result.ok > 0 ? (cpu.user + cpu.system) / result.ok : NaN,
      });
    });
    child.on('error', (err) => finish(err));
    child.on('exit', (code) => {
      if (!settled) finish(new Error(`load generator exited with code ${code}`));
    });
  });
}
