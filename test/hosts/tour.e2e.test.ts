/**
 * README's tour on separate hosts: every command of its "A tour" section, read from README.md
 * itself, run in order from the client host (qkv's CLI, curl, the watchers in the background)
 * against 3 members on their own addresses, and each output compared with the one README shows.
 * Only what cannot be the same on another run is set aside: the cluster's and members' ids, terms,
 * a lease's id (the one granted takes the README's place in later commands), the seconds left on
 * a lease, the store's size in the status table. README's 127.0.0.1 ports 2379, 22379 and 32379
 * are n1's, n2's and n3's hosts; "kill -9 <pid> # n3, the leader" kills n3, made the leader first.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LabCluster } from './lab_cluster.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/qkv.mjs');

/** A command of the tour and the output README shows for it (lines). */
interface Step {
  cmd: string;
  out: string[];
}

/** The console blocks of README's "## A tour" section, each a list of steps (`terminal N $` lines kept as commands). */
function tourBlocks(): Step[][] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A tour'), readme.indexOf('\n## ', readme.indexOf('## A tour') + 1));
  const blocks = [...section.matchAll(/```console\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\n$/, '').split('\n'));
  return blocks.map((lines) => {
    const steps: Step[] = [];
    for (const line of lines) {
      const prompt = /^(?:terminal \d+ )?\$ ?(.*)$/.exec(line);
      if (prompt) steps.push({ cmd: line.startsWith('terminal') ? line : prompt[1]!, out: [] });
      else steps.at(-1)!.out.push(line);
    }
    // A blank line between terminals ends the one before.
    for (const s of steps) while (s.out.at(-1) === '') s.out.pop();
    return steps;
  });
}

let cluster: LabCluster;
const README_URLS: Array<[string, string]> = [
  ['127.0.0.1:22379', 'n2'],
  ['127.0.0.1:32379', 'n3'],
  ['127.0.0.1:2379', 'n1'],
];
/** README's addresses as the lab's. */
const hostUrls = (s: string): string => README_URLS.reduce((acc, [url, name]) => acc.replaceAll(url, new URL(cluster.clientUrl(name)).host), s);

let leaseId = '';
const README_LEASE = '7daa1c12ff8ee';

/** What may differ between runs, set aside alike in README's output and the command's. */
function normalize(lines: string[]): string[] {
  return lines.map((l) => {
    let s = hostUrls(l);
    if (leaseId) s = s.replaceAll(README_LEASE, leaseId);
    s = s.replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":N').replace(/remaining\(\d+s\)/, 'remaining(Ns)');
    s = s.replace(/^(\/locks\/report\/)[0-9a-f]+$/, '$1LEASE');
    // etcdctl's status table: widths follow the contents; ids, size, term and indexes vary.
    if (/^\+[-+]+\+$/.test(s)) return '+';
    if (s.startsWith('|') && !s.includes('ENDPOINT')) {
      const cells = s.split('|').map((c) => c.trim());
      for (const i of [2, 4, 7, 8, 9]) cells[i] = 'X';
      return cells.join('|');
    }
    return s.startsWith('|') ? s.replace(/\s+/g, ' ') : s;
  });
}

/** A tour command as the client host runs it: `qkv` is the CLI with the lab's endpoints. */
function shellCommand(cmd: string): string {
  const qkv = `${process.execPath} ${BIN} --endpoints ${cluster.endpoints.join(',')} `;
  let s = hostUrls(cmd).replace(/(^|\| )qkv /g, `$1${qkv}`);
  if (leaseId) s = s.replaceAll(README_LEASE, leaseId);
  return s;
}

async function run(cmd: string): Promise<string[]> {
  const r = await cluster.lab.run('client', 'sh', ['-c', shellCommand(cmd)], 30_000);
  // As a terminal shows them: etcdctl's status table prints its errors before the table.
  const text = (r.stderr + r.stdout).replace(/\n$/, '');
  return text === '' ? [] : text.split('\n');
}

/** A watcher of the tour running in the background on the client host: what it printed so far. */
function background(cmd: string): { proc: ChildProcess; output: () => string[] } {
  const proc = cluster.lab.spawn('client', 'sh', ['-c', `exec ${shellCommand(cmd)}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out.replace(/\n+$/, '').split('\n') };
}

beforeAll(async () => {
  cluster = await LabCluster.started({ members: 3 });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** `name` the leader among `among`: moved there (etcdctl move-leader) unless it is already. */
async function makeLeader(name: string, among: string[]): Promise<void> {
  const leader = await cluster.waitForLeader(among);
  if (leader === name) return;
  const statuses = (await cluster.endpointStatuses([cluster.clientUrl(name)]))!;
  const id = BigInt(statuses[0]!.Status.header.member_id).toString(16);
  expect((await cluster.etcdctl(['move-leader', id], [cluster.clientUrl(leader)])).code).toBe(0);
  expect(await cluster.waitForLeader(among)).toBe(name);
}

test("README's tour, command by command from the client host, prints what README shows", async () => {
  // README's kill step says n3 is the leader.
  await makeLeader('n3', cluster.names);

  const blocks = tourBlocks();
  const watchAt = blocks.findIndex((b) => b.some((s) => s.cmd.startsWith('terminal')));
  expect(watchAt).toBeGreaterThan(0);
  const watchers: Array<{ step: Step; w: ReturnType<typeof background> }> = [];
  let ran = 0;
  try {
    for (const [i, block] of blocks.entries()) {
      if (i === watchAt - 1) {
        // "Watch in a second terminal, then change keys": the watchers start before the changes.
        for (const step of blocks[watchAt]!) watchers.push({ step, w: background(step.cmd.replace(/^terminal \d+ \$ /, '')) });
        await new Promise((r) => setTimeout(r, 1500));
      }
      if (i === watchAt) {
        for (const { step, w } of watchers) {
          const want = normalize(step.out);
          const deadline = performance.now() + 10_000;
          while (w.output().length < want.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          expect(normalize(w.output()), step.cmd).toEqual(want);
        }
        continue;
      }
      for (const step of block) {
        if (step.cmd === '') continue; // an empty prompt: the command before printed nothing
        if (step.cmd.startsWith('kill -9')) {
          expect(step.cmd).toContain('n3, the leader');
          await cluster.kill('n3');
          // npm start prints "leader is now n2" before README's next command.
          await makeLeader('n2', ['n1', 'n2']);
          ran++;
          continue;
        }
        const got = await run(step.cmd);
        if (step.cmd.startsWith('qkv lease grant')) leaseId = /^lease ([0-9a-f]+) granted/.exec(got[0] ?? '')?.[1] ?? '';
        expect(normalize(got), step.cmd).toEqual(normalize(step.out));
        ran++;
      }
    }
  } finally {
    for (const { w } of watchers) w.proc.kill('SIGKILL');
  }
  expect(ran).toBeGreaterThan(15);

  // "Restart it and it catches up."
  cluster.start('n3');
  await cluster.waitForLeader();
  expect(await cluster.servedValue('n3', '/crontab/jobs/job4', 'still writable')).toBe('still writable');
}, 120_000);
