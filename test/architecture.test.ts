import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * ARCHITECTURE.md: the portal and the bank are two organizations and talk only over the
 * network, so neither imports the other; platform/ has no domain knowledge, so it imports
 * neither. This test reads every import in src/ and fails on a crossing.
 */
const SRC = path.resolve(import.meta.dirname, '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|tsx)$/.test(entry.name) ? [full] : [];
  });
}

const IMPORT =
  /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2]!)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.relative(SRC, path.resolve(path.dirname(file), spec)));
}

/** Top-level area of a path under src/: portal, bank, platform, config, or a root file. */
const area = (relative: string) => relative.split(path.sep)[0]!;

const FORBIDDEN: Record<string, string[]> = {
  portal: ['bank'],
  bank: ['portal'],
  platform: ['portal', 'bank'],
  config: ['portal', 'bank', 'platform'],
};

export function boundaryViolations(files: string[]): string[] {
  const violations: string[] = [];
  for (const file of files) {
    const from = area(path.relative(SRC, file));
    for (const target of importsOf(file)) {
      if (FORBIDDEN[from]?.includes(area(target))) {
        violations.push(`${path.relative(SRC, file)} imports ${target}`);
      }
    }
  }
  return violations;
}

describe('module boundaries', () => {
  const files = sourceFiles(SRC);

  it('finds the source tree', () => {
    expect(files.some((f) => f.includes(`${path.sep}portal${path.sep}`))).toBe(true);
    expect(files.some((f) => f.includes(`${path.sep}bank${path.sep}`))).toBe(true);
  });

  it('portal and bank never import each other; platform and config import neither', () => {
    expect(boundaryViolations(files)).toEqual([]);
  });

  it('notices a crossing when there is one', () => {
    // A bank file importing the portal, as the check sees it: proves the check can fail.
    const imports = importsOf(path.join(SRC, 'services.ts'));
    expect(imports.some((i) => area(i) === 'portal')).toBe(true);
    expect(imports.some((i) => area(i) === 'bank')).toBe(true);
    expect(FORBIDDEN.bank).toContain(area(imports.find((i) => area(i) === 'portal')!));
  });
});
