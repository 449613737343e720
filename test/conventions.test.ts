/**
 * Conventions of the source tree that the compiler does not check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');

const RAFT = path.join(SRC, 'raft');
const MVCC = path.join(SRC, 'mvcc');
const SERVER = path.join(SRC, 'server');
const GRPC = path.join(SRC, 'grpc');

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
 * The public surface of src/mvcc for the rest of src: index.ts, and types.ts (the store's own
 * types: MvccRequest, ApplyEntry, results; index.ts re-exports them). etcd's KV messages are
 * src/api/kv.ts's. Tests and benchmarks may reach inside, to test and measure the parts.
 */
const MVCC_SURFACE = [path.join(MVCC, 'index.ts'), path.join(MVCC, 'types.ts')];

/**
 * What a client author reads never involves the store: src/client, src/cli and src/api import
 * nothing from src/mvcc (the wire types are src/api/kv.ts), and src/client and src/api do not reach
 * it through other modules either (src/cli does, rightly, only through `serve`'s member process).
 */
const MVCC_FREE = [path.join(SRC, 'client'), path.join(SRC, 'cli'), path.join(SRC, 'api')];
const MVCC_FREE_CLOSURE = [path.join(SRC, 'client'), path.join(SRC, 'api')];

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

/**
 * src/backup reads files made by etcd, for a restore that sits above it: it imports nothing from
 * the rest of src but src/errors.ts (Node modules it may), so the reader stays usable from the CLI
 * and the server alike and can never reach into the store it will feed.
 */
const BACKUP = path.join(SRC, 'backup');
const BACKUP_MAY_IMPORT = [path.join(SRC, 'errors.ts')];

/** Imports of the src/backup files among `sources` that reach src outside it (but src/errors.ts), or a package, as `file -> import`. */
function backupBoundaryViolations(sources: Source[]): string[] {
  return sources
    .filter((s) => inside(BACKUP, s.file))
    .flatMap((s) =>
      importsOf(s.code)
        .filter((spec) => {
          if (spec.startsWith('node:')) return false;
          const target = resolved(s.file, spec);
          return target === undefined || (!inside(BACKUP, target) && !BACKUP_MAY_IMPORT.includes(target));
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

/** Imports of src/mvcc by src/client, src/cli and src/api among `sources` (or, from src/client and src/api, through other modules), as `file -> import`. */
function mvccFreeViolations(sources: Source[]): string[] {
  const graph = importGraph(sources);
  return sources.flatMap((s) => {
    if (!MVCC_FREE.some((d) => inside(d, s.file))) return [];
    const direct = importsOf(s.code).filter((spec) => {
      const target = resolved(s.file, spec);
      return target !== undefined && inside(MVCC, target);
    });
    if (direct.length > 0) return direct.map((spec) => `${rel(s.file)} -> ${spec}`);
    if (!MVCC_FREE_CLOSURE.some((d) => inside(d, s.file))) return [];
    const reached = reaches(graph, s.file, (f) => inside(MVCC, f));
    return reached === undefined ? [] : [`${rel(s.file)} -> ... -> ${rel(reached)}`];
  });
}

/** The first module satisfying `target` that `from` reaches through the imports of `graph`, if any. */
function reaches(graph: Map<string, string[]>, from: string, target: (file: string) => boolean): string | undefined {
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length > 0) {
    for (const w of graph.get(todo.pop()!) ?? []) {
      if (target(w)) return w;
      if (!seen.has(w)) {
        seen.add(w);
        todo.push(w);
      }
    }
  }
  return undefined;
}

/** The module graph of `sources`: each file's relative imports (type-only ones included), as files. */
function importGraph(sources: Source[]): Map<string, string[]> {
  return new Map(sources.map((s) => [s.file, importsOf(s.code).flatMap((spec) => resolved(s.file, spec) ?? [])]));
}

/**
 * The import cycles among `sources`, type-only imports included (they exempt nothing: a cycle of
 * types is the same tangle of modules): each strongly connected component of the module graph
 * (two or more modules reaching each other, or one importing itself) as its sorted files.
 */
function importCycles(sources: Source[]): string[][] {
  const graph = importGraph(sources);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || graph.get(v)!.includes(v)) cycles.push(component.map(rel).sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Pairs of modules among `sources` that import each other directly, as `a <-> b`. */
function mutualImports(sources: Source[]): string[] {
  const graph = importGraph(sources);
  return [...graph].flatMap(([a, targets]) => targets.filter((b) => a < b && graph.get(b)?.includes(a)).map((b) => `${rel(a)} <-> ${rel(b)}`));
}

/**
 * The `qkv/server` package entry: it re-exports the member process (src/member_process.ts),
 * which sits above src/server and src/grpc, so it alone reaches src/grpc (never directly).
 */
const SERVER_ENTRY = path.join(SERVER, 'index.ts');

/**
 * src/grpc builds on src/server, never the reverse: a src/server module that imports src/grpc, or
 * (src/server/index.ts aside) reaches it through other modules, as `file -> grpc module`.
 */
function serverToGrpcViolations(sources: Source[]): string[] {
  const graph = importGraph(sources);
  const reachesGrpc = (from: string): string | undefined => reaches(graph, from, (f) => inside(GRPC, f));
  return [...graph.keys()]
    .filter((f) => inside(SERVER, f))
    .flatMap((f) => {
      const direct = graph.get(f)!.find((w) => inside(GRPC, w));
      const reached = direct ?? (f === SERVER_ENTRY ? undefined : reachesGrpc(f));
      return reached === undefined ? [] : [`${rel(f)} -> ${rel(reached)}`];
    });
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
    expect(
      read(sourceFiles(RAFT))
        .filter((s) => impure.test(s.code))
        .map((s) => rel(s.file)),
    ).toEqual([]);
  });

  it('src/raft counts majorities only in quorum.ts (no inline n/2+1 elsewhere in the core)', () => {
    const halving = /\/\s*2\b|>>>?\s*1\b|\*\s*0?\.5\b/;
    const inline = read(sourceFiles(RAFT)).filter((s) => path.basename(s.file) !== 'quorum.ts' && halving.test(s.code));
    expect(inline.map((s) => rel(s.file))).toEqual([]);
  });

  it('src/backup imports nothing from src but src/errors.ts, and no package', () => {
    const backup = read(sourceFiles(BACKUP));
    expect(backup.length).toBeGreaterThan(2);
    expect(backupBoundaryViolations(backup)).toEqual([]);
    const planted = (lines: string[]): Source => ({ file: path.join(BACKUP, 'planted.ts'), code: stripComments(lines.join('\n')) });
    expect(
      backupBoundaryViolations([
        planted([
          "import { Buffer } from 'node:buffer';",
          "import { CodedError } from '../errors.js';",
          "import { BboltDb } from './bbolt.js';",
          "import type { KeyValue } from '../api/kv.js';",
          "import { pack } from 'msgpackr';",
        ]),
      ]),
    ).toEqual(['backup/planted.ts -> ../api/kv.js', 'backup/planted.ts -> msgpackr']);
  });

  it('the rest of src imports src/mvcc only through its public surface (index.ts, types.ts)', () => {
    expect(mvccSurfaceViolations(read(sourceFiles(SRC)))).toEqual([]);
  });

  it('src/server imports nothing from src/grpc, directly or through other modules (src/grpc builds on src/server)', () => {
    expect(serverToGrpcViolations(read(sourceFiles(SRC)))).toEqual([]);
  });

  it('no two modules of src import each other (http.ts registers http_v1.ts; what both need is in http_shared.ts and requests.ts)', () => {
    expect(mutualImports(read(sourceFiles(SRC)))).toEqual([]);
  });

  it('the module graph of src has no cycle, type-only imports included', () => {
    expect(importCycles(read(sourceFiles(SRC)))).toEqual([]);
  });

  it("src/client, src/cli and src/api import nothing from src/mvcc (etcd's messages are src/api/kv.ts); src/client and src/api do not reach it at all", () => {
    expect(mvccFreeViolations(read(sourceFiles(SRC)))).toEqual([]);
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
    expect(raftBoundaryViolations([raft])).toEqual([
      'raft/planted.ts -> node:fs',
      'raft/planted.ts -> level',
      'raft/planted.ts -> ../lock.js',
      'raft/planted.ts -> node:path',
    ]);
    const server = planted('server/planted.ts', [
      "import { MvccStore } from '../mvcc/store.js';",
      "import type { PutRequest } from '../mvcc/types.js';",
      "import { encodeRequest } from '../mvcc/index.js';",
      "export { isTxnReadonly } from '../mvcc/txn.js';",
    ]);
    expect(mvccSurfaceViolations([server])).toEqual(['server/planted.ts -> ../mvcc/store.js', 'server/planted.ts -> ../mvcc/txn.js']);
    // Inside src/mvcc, any of its modules may be imported.
    expect(mvccSurfaceViolations([planted('mvcc/planted.ts', ["import { MvccStore } from './store.js';"])])).toEqual([]);
    // src/client, src/cli and src/api: not even the surface; src/client and src/api not through other modules either.
    const client = planted('client/planted.ts', ["import type { KeyValue } from '../mvcc/types.js';", "import type { TxnRequest } from '../api/kv.js';"]);
    const cli = planted('cli/planted.ts', ["import { MvccStore } from '../mvcc/index.js';", "const { serve } = await import('../member_process.js');"]);
    const api = planted('api/planted.ts', ["export type { ApplyEntry } from '../mvcc/types.js';"]);
    const indirect = planted('client/planted_indirect.ts', ["import type { Member } from '../server/member.js';"]);
    const fine = planted('cli/planted_serve.ts', ["const { serveUntilSignalled } = await import('../member_process.js');"]);
    expect(mvccFreeViolations([...read(sourceFiles(SRC)), client, cli, api, indirect, fine])).toEqual([
      'client/planted.ts -> ../mvcc/types.js',
      'cli/planted.ts -> ../mvcc/index.js',
      'api/planted.ts -> ../mvcc/types.js',
      expect.stringMatching(/^client\/planted_indirect\.ts -> \.\.\. -> mvcc\//),
    ]);
  });

  it('the layering and cycle checks report planted violations', () => {
    const planted = (file: string, lines: string[]): Source => ({ file: path.join(SRC, file), code: stripComments(lines.join('\n')) });
    // Over the real tree, with planted modules added (or put in place of real ones).
    const tree = (...plants: Source[]): Source[] => [...read(sourceFiles(SRC)).filter((s) => !plants.some((p) => p.file === s.file)), ...plants];
    const direct = planted('server/planted_direct.ts', [
      "import { GRPC_OVERHEAD_BYTES } from './requests.js';",
      "import type { EtcdGrpcServer } from '../grpc/server.js';",
    ]);
    const indirect = planted('server/planted_indirect.ts', ["const { serve } = await import('../member_process.js');"]);
    const comment = planted('server/planted_comment.ts', ["// import { x } from '../grpc/server.js'; a comment does not count"]);
    expect(serverToGrpcViolations(tree(direct, indirect, comment)).sort()).toEqual([
      'server/planted_direct.ts -> grpc/server.ts',
      'server/planted_indirect.ts -> grpc/server.ts',
    ]);
    // A real module made to reach src/grpc taints its importers too; index.ts may reach it only through member_process.ts.
    const leader = planted('server/leader.ts', [...code(path.join(SERVER, 'leader.ts')).split('\n'), "import { LEADS_HERE } from '../grpc/forward.js';"]);
    const entry = planted('server/index.ts', ["export * from '../grpc/mux.js';"]);
    const found = serverToGrpcViolations(tree(leader, entry));
    expect(found).toContain('server/leader.ts -> grpc/forward.ts');
    expect(found).toContain('server/member.ts -> grpc/forward.ts');
    expect(found).toContain('server/index.ts -> grpc/mux.ts');

    // http_v1.ts importing http.ts back (as it once did): a mutual import, and a cycle.
    const v1 = planted('server/http_v1.ts', [...code(path.join(SERVER, 'http_v1.ts')).split('\n'), "import type { HttpServerOptions } from './http.js';"]);
    expect(mutualImports(tree(v1))).toEqual(['server/http.ts <-> server/http_v1.ts']);
    expect(importCycles(tree(v1))).toEqual([['server/http.ts', 'server/http_v1.ts']]);
    // A longer cycle, of types only, and a module importing itself.
    const a = planted('x/a.ts', ["import type { B } from './b.js';"]);
    const b = planted('x/b.ts', ["export type { C } from './c.js';"]);
    const c = planted('x/c.ts', ["import type { A } from './a.js';", "import { y } from '../lock.js';"]);
    const self = planted('x/self.ts', ["import * as me from './self.js';"]);
    expect(mutualImports([a, b, c, self])).toEqual([]);
    expect(importCycles([a, b, c, self])).toEqual([['x/a.ts', 'x/b.ts', 'x/c.ts'], ['x/self.ts']]);
  });
});

const TEST = path.join(import.meta.dirname);

/**
 * A test that starts processes or opens sockets is an end-to-end test, named *.e2e.test.ts, so
 * that `npm run test:unit` (everything else) needs no process, port or etcd install. The code
 * that does either, seen from a test file's own text or the helpers it imports.
 */
const STARTS_PROCESSES_OR_SOCKETS =
  /\b(?:spawn|spawnSync|fork|execFile|execFileSync)\s*\(|\.listen\s*\(|\bfreePorts\s*\(|\bLocalCluster\b|\bRealEtcd\b|\bProxiedCluster\b|\betcdctl\s*\(/;

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
  return files.filter((s) => s.file.endsWith('.test.ts') && !s.file.endsWith('.e2e.test.ts') && usesProcesses(s.file)).map((s) => path.relative(TEST, s.file));
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
