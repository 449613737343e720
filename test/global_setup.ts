/**
 * Vitest's global setup: builds dist/ from the current src/ before any test runs, since every
 * member process the tests start (bin/qkv.mjs) runs the compiled JavaScript, never src/ itself.
 * The build is tsc's incremental one (tsconfig.build.json, about 3 s when nothing changed: it
 * compares the sources' contents with its build info, not their timestamps). tsc does not notice
 * outputs deleted behind its back, so a source without its .js forces a full build first, and
 * outputs whose source is gone are deleted (nothing can import a removed module by accident).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');

/** Paths under `dir` (relative to it) of the files whose names end with `suffix`. */
function files(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith(suffix));
}

export default function setup(): void {
  const sources = files(SRC, '.ts').filter((f) => !f.endsWith('.d.ts'));
  const have = new Set(sources.map((f) => f.slice(0, -'.ts'.length)));
  if (sources.some((f) => !existsSync(path.join(DIST, `${f.slice(0, -'.ts'.length)}.js`)))) {
    rmSync(path.join(DIST, '.tsbuildinfo'), { force: true });
  }
  for (const f of files(DIST, '.js')) {
    const base = f.slice(0, -'.js'.length);
    if (!have.has(base)) for (const ext of ['.js', '.js.map', '.d.ts']) rmSync(path.join(DIST, base + ext), { force: true });
  }
  const dirs = existsSync(DIST) ? readdirSync(DIST, { recursive: true, withFileTypes: true }).filter((e) => e.isDirectory()) : [];
  for (const d of dirs
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
    .reverse()) {
    if (readdirSync(d).length === 0) rmdirSync(d);
  }
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`building dist/ (tsc -p tsconfig.build.json) failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}
