import type { Measured } from './load-runner.js';

export type Verdict = 'PASS' | 'FAIL' | 'info' | 'INVALID' | 'not run';

export interface Row {
  name: string;
  m?: Measured | undefined;
  /** Percentiles (ms) of a row that is not a load measurement, e.g. revocation latency. */
  latency?: { p50: number; p99: number } | undefined;
  ratio?: number;
  target: string;
  verdict: Verdict;
}

const fixed = (n: number | undefined, digits: number) =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);

/** A plain-text table; numbers right-aligned. */
export function table(rows: Row[]): string {
  const head = [
    'measurement',
    'req/s',
    'p50 ms',
    'p99 ms',
    '× base',
    'target',
    'result',
    'srv ELU',
    'srv µs/req',
    'bad status/err',
  ];
  const body = rows.map((r) => [
    r.name,
    r.m ? fixed(r.m.rps, 0) : '–',
    fixed(r.m?.p50 ?? r.latency?.p50, 2),
    fixed(r.m?.p99 ?? r.latency?.p99, 2),
    r.ratio === undefined ? '–' : `${r.ratio.toFixed(3)}×`,
    r.target,
    r.verdict,
    fixed(r.m?.elu, 2),
    fixed(r.m?.cpuPerRequestUs, 0),
    r.m?.unexpected === undefined ? '–' : `${r.m.unexpected}/${r.m.errors ?? 0}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const left = new Set([0, 5, 6]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
