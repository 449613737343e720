/**
 * Conventions of the source tree that the compiler does not check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');

const RAFT = path.join(SRC, 'raft');
const MVCC = path.join(SRC, 'mvcc');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** Source text without its comments, so that a comment naming Buffer (or an import) does not count. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

/** The code of a file without its comments. */
function code(file: string): string {
  return stripComments(readFileSync(file, 'utf8'));
}

/** A source file to check: where it is (or would be) and its code. */
interface Source {
  file: string;
  code: string;
}

const read = (files: string[]): Source[] => files.map((file) => ({ file, code: code(file) }));

/** Every module the code imports or re-exports (static, side-effect or dynamic), as written. */
function importsOf(c: string): string[] {
  const found: string[] = [];
  for (const re of [/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of c.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** A relative import as the .ts file it names; undefined for a package or a Node module. */
function resolved(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
}

const inside = (dir: string, file: string): boolean => !path.relative(dir, file).startsWith('..');
const rel = (f: string): string => path.relative(SRC, f);

/**
 * All src/raft may import from outside itself: src/errors.ts, the import-free base class of every
 * qkv error (its `code` is what src/server/errors.ts maps to a status), so the core's errors stay
 * CodedErrors. Nothing from Node (not even node:buffer: the core needs none of it), no package.
 */
const RAFT_MAY_IMPORT = [path.join(SRC, 'errors.ts')];

/**
 * The public surface of src/mvcc for the rest of src: index.ts, and types.ts (the request and
 * response types, imported by the API, gRPC, client, CLI and server layers alike; index.ts
 * re-exports them). Tests and benchmarks may reach inside, to test and measure the parts.
 */
const MVCC_SURFACE = [path.join(MVCC, 'index.ts'), path.join(MVCC, 'types.ts')];

/** Imports of the src/raft files among `sources` that leave the pure core, as `file -> import`. */
function raftBoundaryViolations(sources: Source[]): string[] {
  return sources
    .filter((s) => inside(RAFT, s.file))
    .flatMap((s) =>
      importsOf(s.code)
        .filter((spec) => {
          const target = resolved(s.file, spec);
          return target === undefined || (!inside(RAFT, target) && !RAFT_MAY_IMPORT.includes(target));
        })
        .map((spec) => `${rel(s.file)} -> ${spec}`),
    );
}

/** Imports of src/mvcc internals by the other files among `sources`, as `file -> import`. */
function mvccSurfaceViolations(sources: Source[]): string[] {
  return sources
    .filter((s) => !inside(MVCC, s.file))
    .flatMap((s) =>
      importsOf(s.code)
        .filter((spec) => {
          const target = resolved(s.file, spec);
          return target !== undefined && inside(MVCC, target) && !MVCC_SURFACE.includes(target);
        })
        .map((spec) => `${rel(s.file)} -> ${spec}`),
    );
}

describe('source conventions', () => {
  it('finds the source files', () => {
    expect(sourceFiles(SRC).length).toBeGreaterThan(50);
  });

  // Node 20 defines the global Buffer as an accessor on globalThis: every use of it calls a getter
  // (about 25 ns), which was 3% of a point get. The module binding is a plain constant.
  it('every module that uses Buffer as a value imports it from node:buffer', () => {
    const missing = sourceFiles(SRC).filter((f) => {
      const c = code(f);
      return /\bBuffer\s*\.|\bnew Buffer\b|instanceof Buffer\b/.test(c) && !/import \{[^}]*\bBuffer\b[^}]*\} from 'node:buffer'/.test(c);
    });
    expect(missing.map((f) => path.relative(SRC, f))).toEqual([]);
  });

  it('src/raft is the pure core: no Node module, no package, nothing outside src/raft but src/errors.ts', () => {
    const raft = read(sourceFiles(RAFT));
    expect(raft.length).toBeGreaterThan(5);
    expect(raftBoundaryViolations(raft)).toEqual([]);
    // What it may import keeps the closure pure: it imports nothing itself.
    for (const f of RAFT_MAY_IMPORT) expect(importsOf(code(f))).toEqual([]);
  });

  it('src/raft keeps no clock, timer, randomness or process state of its own (time is tick(), randomness Config.random)', () => {
    const impure = /\b(?:Date\.now|new Date|Math\.random|performance\.|setTimeout|setInterval|setImmediate|queueMicrotask|process\.|globalThis|require\()/;
    expect(read(sourceFiles(RAFT)).filter((s) => impure.test(s.code)).map((s) => rel(s.file))).toEqual([]);
  });

  it('src/raft counts majorities only in quorum.ts (no inline n/2+1 elsewhere in the core)', () => {
    const halving = /\/\s*2\b|>>>?\s*1\b|\*\s*0?\.5\b/;
    const inline = read(sourceFiles(RAFT)).filter((s) => path.basename(s.file) !== 'quorum.ts' && halving.test(s.code));
    expect(inline.map((s) => rel(s.file))).toEqual([]);
  });

  it('the rest of src imports src/mvcc only through its public surface (index.ts, types.ts)', () => {
    expect(mvccSurfaceViolations(read(sourceFiles(SRC)))).toEqual([]);
  });

  it('the import checks report a planted violation', () => {
    const planted = (file: string, lines: string[]): Source => ({ file: path.join(SRC, file), code: stripComments(lines.join('\n')) });
    const raft = planted('raft/planted.ts', [
      "import { readFileSync } from 'node:fs';",
      "import { Level } from 'level';",
      "import type { Lock } from '../lock.js';",
      "import { CodedError } from '../errors.js';",
      "export { RaftLog } from './log.js';",
      "import './types.js';",
      "const p = await import('node:path');",
      "// import { y } from 'node:os'; a comment does not count",
    ]);
    expect(raftBoundaryViolations([raft])).toEqual(['raft/planted.ts -> node:fs', 'raft/planted.ts -> level', 'raft/planted.ts -> ../lock.js', 'raft/planted.ts -> node:path']);
    const server = planted('server/planted.ts', [
      "import { MvccStore } from '../mvcc/store.js';",
      "import type { PutRequest } from '../mvcc/types.js';",
      "import { encodeRequest } from '../mvcc/index.js';",
      "export { isTxnReadonly } from '../mvcc/txn.js';",
    ]);
    expect(mvccSurfaceViolations([server])).toEqual(['server/planted.ts -> ../mvcc/store.js', 'server/planted.ts -> ../mvcc/txn.js']);
    // Inside src/mvcc, any of its modules may be imported.
    expect(mvccSurfaceViolations([planted('mvcc/planted.ts', ["import { MvccStore } from './store.js';"])])).toEqual([]);
  });
});

const TEST = path.join(import.meta.dirname);

/**
 * A test that starts processes or opens sockets is an end-to-end test, named *.e2e.test.ts, so
 * that `npm run test:unit` (everything else) needs no process, port or etcd install. The code
 * that does either, seen from a test file's own text or the helpers it imports.
 */
const STARTS_PROCESSES_OR_SOCKETS = /\b(?:spawn|spawnSync|fork|execFile|execFileSync)\s*\(|\.listen\s*\(|\bfreePorts\s*\(|\bLocalCluster\b|\bRealEtcd\b|\bProxiedCluster\b|\betcdctl\s*\(/;

/** Test files whose code (or the test helpers they import, transitively) starts processes or opens sockets, not named *.e2e.test.ts. */
function unitTestsWithProcesses(files: Source[]): string[] {
  const byFile = new Map(files.map((s) => [s.file, s]));
  const usesProcesses = (file: string, seen = new Set<string>()): boolean => {
    if (seen.has(file)) return false;
    seen.add(file);
    const src = byFile.get(file);
    if (!src) return false;
    if (STARTS_PROCESSES_OR_SOCKETS.test(src.code)) return true;
    return importsOf(src.code).some((spec) => {
      const target = resolved(file, spec);
      return target !== undefined && inside(TEST, target) && usesProcesses(target, seen);
    });
  };
  return files
    .filter((s) => s.file.endsWith('.test.ts') && !s.file.endsWith('.e2e.test.ts') && usesProcesses(s.file))
    .map((s) => path.relative(TEST, s.file));
}

describe('test files', () => {
  it('a test that starts processes or opens sockets is named *.e2e.test.ts (npm run test:unit runs the rest)', () => {
    const files = read(sourceFiles(TEST).filter((f) => f !== path.join(TEST, 'conventions.test.ts')));
    expect(unitTestsWithProcesses(files)).toEqual([]);
  });

  it('the check reports a planted unit test that starts a cluster through a helper', () => {
    const planted = (file: string, lines: string[]): Source => ({ file: path.join(TEST, file), code: stripComments(lines.join('\n')) });
    const files = [
      planted('x/helper.ts', ['export async function up() { return LocalCluster.create(); }']),
      planted('x/indirect.test.ts', ["import { up } from './helper.js';", 'test("x", () => up());']),
      planted('x/direct.test.ts', ["import { spawn } from 'node:child_process';", 'spawn("etcd", []);']),
      planted('x/fine.e2e.test.ts', ["import { up } from './helper.js';"]),
      planted('x/pure.test.ts', ['// spawn( in a comment does not count', 'expect(1).toBe(1);']),
    ];
    expect(unitTestsWithProcesses(files).sort()).toEqual(['x/direct.test.ts', 'x/indirect.test.ts']);
  });
});
