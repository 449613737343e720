/**
 * Data-driven interaction tests of the Raft core, in the manner of etcd-io/raft's rafttest
 * (interaction_env*.go) and testdata/*.txt: a script is a list of commands, each followed by
 * the output it must produce, in the canonical text form of src/raft/describe.ts.
 *
 *   # a comment (kept as is when the outputs are rewritten)
 *   campaign 1
 *   ----
 *   ok
 *
 * A stanza is a command line, a `----` line, and its expected output up to the next blank line
 * (a command with nothing to say prints `ok`). Arguments are words; `key=value` words are options.
 *
 * The environment is a network of RawNodes over the test harness's in-memory "disk" (persist()
 * from harness.ts): a processed Ready is persisted, its messages queued in one FIFO mailbox, its
 * committed entries applied. A message is lost if its link is cut (partition, isolate) when it
 * is sent or when it is delivered. Nothing moves unless a command moves it: messages wait in the
 * mailbox until delivered, and no node ticks on its own. Elections are deterministic (random is
 * 0, so an election timeout is exactly electionTick ticks).
 *
 * To add a command, add a handler to HANDLERS: it gets the environment and the parsed command,
 * and writes its output with env.print.
 */
import { RawNode } from '../../src/raft/rawnode.js';
import { RaftError } from '../../src/raft/errors.js';
import { describeConfState, describeEntry, describeMessage, describeReady, describeSnapshotMetadata, describeStatus } from '../../src/raft/describe.js';
import { decodeConfChange, describeConfChange } from '../../src/raft/confchange.js';
import { ConfChangeType, EntryType, type Config, type Message, type NodeId, type PersistentState } from '../../src/raft/types.js';
import { data, emptyState, newConfig, persist } from './harness.js';

// ---- scripts -------------------------------------------------------------------------------

interface Command {
  name: string;
  /** Positional words. */
  args: string[];
  /** `key=value` words. */
  options: Map<string, string>;
}

export interface Stanza {
  /** 1-based line of the command in the script. */
  line: number;
  command: string;
  expected: string[];
}

/** A script: stanzas, and the lines between them (comments, blank lines) kept for rewriting. */
export type ScriptPart = { text: string } | { stanza: Stanza };

class ScriptError extends Error {}

export function parseScript(source: string, file = 'script'): ScriptPart[] {
  const lines = source.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parts: ScriptPart[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      parts.push({ text: line });
      i++;
      continue;
    }
    if (lines[i + 1] !== '----') throw new ScriptError(`${file}:${i + 1}: command "${line}" is not followed by a ---- line`);
    const stanza: Stanza = { line: i + 1, command: line, expected: [] };
    i += 2;
    while (i < lines.length && lines[i]!.trim() !== '') stanza.expected.push(lines[i++]!);
    parts.push({ stanza });
  }
  return parts;
}

/** The script with each stanza's output replaced by `outputs` (by stanza), the rest unchanged. */
export function formatScript(parts: ScriptPart[], outputs: Map<Stanza, string[]>): string {
  const lines: string[] = [];
  for (const p of parts) {
    if ('text' in p) lines.push(p.text);
    else lines.push(p.stanza.command, '----', ...(outputs.get(p.stanza) ?? p.stanza.expected));
  }
  return `${lines.join('\n')}\n`;
}

function parseCommand(line: string): Command {
  const [name, ...words] = line.trim().split(/\s+/);
  const args: string[] = [];
  const options = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) options.set(w.slice(0, eq), w.slice(eq + 1));
    else args.push(w);
  }
  return { name: name!, args, options };
}

/** A line diff (longest common subsequence): unchanged lines `  `, expected only `- `, actual only `+ `. */
function diffLines(expected: string[], actual: string[]): string {
  const n = expected.length;
  const m = actual.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = expected[i] === actual[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(`  ${expected[i++]}`);
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push(`- ${expected[i++]}`);
    } else {
      out.push(`+ ${actual[j++]}`);
    }
  }
  return out.join('\n');
}

// ---- the environment -----------------------------------------------------------------------

interface EnvNode {
  id: NodeId;
  raw: RawNode;
  /** What the node has persisted (the harness's in-memory disk). */
  disk: PersistentState;
  config: Config;
  /** Last index the application applied (committed entries handed out, or a snapshot). */
  applied: number;
}

class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  /** Messages sent and not yet delivered, in send order; `lost` if a cut link dropped them when sent. */
  mailbox: { msg: Message; lost: boolean }[] = [];
  /** Directed links that drop what crosses them: "from->to". */
  readonly cut = new Set<string>();
  private output: string[] = [];

  print(...lines: string[]): void {
    for (const l of lines) this.output.push(...l.split('\n'));
  }

  node(word: string | undefined): EnvNode {
    const n = this.nodes.get(Number(word));
    if (!n) throw new ScriptError(`no node ${word ?? '(missing id)'}`);
    return n;
  }

  /** The nodes named by the command's arguments, or every node if it names none. */
  nodesOf(cmd: Command): EnvNode[] {
    return cmd.args.length > 0 ? cmd.args.map((a) => this.node(a)) : [...this.nodes.values()];
  }

  /** Runs one command and returns its output lines (`ok` if it printed nothing). */
  handle(line: string): string[] {
    this.output = [];
    const cmd = parseCommand(line);
    const handler = HANDLERS[cmd.name];
    if (!handler) throw new ScriptError(`unknown command ${cmd.name}`);
    try {
      handler(this, cmd);
    } catch (err) {
      // The core's refusals are part of the expected behaviour; anything else is a bug.
      if (!(err instanceof RaftError)) throw err;
      this.print(`error: ${err.message}`);
    }
    return this.output.length > 0 ? this.output : ['ok'];
  }

  /** Handles the node's Ready, if it has one: persist, queue the messages, apply, advance. */
  processReady(n: EnvNode): boolean {
    if (!n.raw.hasReady()) return false;
    const rd = n.raw.ready();
    this.print(`> ${n.id} handling Ready`, indent(describeReady(rd)));
    persist(n.disk, rd);
    for (const msg of rd.messages) this.mailbox.push({ msg, lost: this.cut.has(`${msg.from}->${msg.to}`) });
    if (rd.snapshot) n.applied = rd.snapshot.metadata.index;
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last) n.applied = last.index;
    // The application applies committed conf changes in log order, as raft_node does.
    for (const e of rd.committedEntries) {
      const cc = e.type === EntryType.ConfChange ? decodeConfChange(e.data) : undefined;
      if (cc) this.print(`> ${n.id} applying ${describeConfChange(cc)}: ${describeConfState(n.raw.applyConfChange(cc))}`);
    }
    n.raw.advance(rd);
    return true;
  }

  /**
   * Delivers every queued message to `n`, in order; one is dropped instead (and printed so) if
   * its link was cut when it was sent or is cut now, or if `drop` says so.
   */
  deliver(n: EnvNode, drop = false): boolean {
    const mine = this.mailbox.filter((e) => e.msg.to === n.id);
    if (mine.length === 0) return false;
    this.mailbox = this.mailbox.filter((e) => e.msg.to !== n.id);
    this.print(`> ${n.id} receiving messages`);
    for (const { msg, lost } of mine) {
      if (drop || lost || this.cut.has(`${msg.from}->${msg.to}`)) {
        this.print(`  ${describeMessage(msg)} (dropped)`);
        continue;
      }
      this.print(`  ${describeMessage(msg)}`);
      n.raw.step(msg);
    }
    return true;
  }

  /** Cuts every link between nodes of different groups. */
  partition(groups: NodeId[][]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of this.nodes.keys()) {
      for (const b of this.nodes.keys()) {
        if (a !== b && groupOf.get(a) !== groupOf.get(b)) this.cut.add(`${a}->${b}`);
      }
    }
  }
}

function indent(block: string): string {
  return block
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function flag(cmd: Command, key: string, fallback: boolean): boolean {
  const v = cmd.options.get(key);
  if (v === undefined) return fallback;
  if (v !== 'true' && v !== 'false') throw new ScriptError(`${key}=${v}: expected true or false`);
  return v === 'true';
}

function int(cmd: Command, key: string, fallback: number): number {
  const v = cmd.options.get(key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ScriptError(`${key}=${v}: expected an integer`);
  return n;
}

const ids = (word: string): NodeId[] => word.split(',').map(Number);

// ---- commands ------------------------------------------------------------------------------

const CONF_CHANGE_TYPES: Record<string, ConfChangeType> = {
  add: ConfChangeType.AddNode,
  'add-learner': ConfChangeType.AddLearnerNode,
  remove: ConfChangeType.RemoveNode,
};

type Handler = (env: InteractionEnv, cmd: Command) => void;

const HANDLERS: Record<string, Handler> = {
  /**
   * add-nodes <count> [voters=1,2,3] [pre-vote=true] [check-quorum=true] [election=10]
   *   [heartbeat=1] [max-size=<bytes per append>] [max-inflight=<appends>]
   * New nodes with empty logs; voters default to every node there is once they are added.
   */
  'add-nodes': (env, cmd) => {
    const count = Number(cmd.args[0]);
    if (!Number.isSafeInteger(count) || count < 1) throw new ScriptError('add-nodes <count>');
    const first = Math.max(0, ...env.nodes.keys()) + 1;
    const added = Array.from({ length: count }, (_, i) => first + i);
    const voters = cmd.options.has('voters') ? ids(cmd.options.get('voters')!) : [...env.nodes.keys(), ...added];
    for (const id of added) {
      const config = newConfig(id, voters, {
        preVote: flag(cmd, 'pre-vote', true),
        checkQuorum: flag(cmd, 'check-quorum', true),
        electionTick: int(cmd, 'election', 10),
        heartbeatTick: int(cmd, 'heartbeat', 1),
        maxSizePerMsg: int(cmd, 'max-size', 1024 * 1024),
        maxInflightMsgs: int(cmd, 'max-inflight', 256),
        // No randomness: an election timeout is exactly electionTick ticks.
        random: () => 0,
      });
      const disk = emptyState();
      const n: EnvNode = { id, raw: new RawNode(config, structuredClone(disk)), disk, config, applied: 0 };
      env.nodes.set(id, n);
      env.print(describeStatus(n.raw.status()));
    }
  },

  /**
   * restart <id>: the node crashes and starts again from what it persisted (its unhandled Ready
   * is lost; messages already sent stay in the mailbox) and resumes applying after its applied index.
   */
  restart: (env, cmd) => {
    const n = env.node(cmd.args[0]);
    n.config = { ...n.config, applied: n.applied };
    n.raw = new RawNode(n.config, structuredClone(n.disk));
    env.print(describeStatus(n.raw.status()));
  },

  /** campaign <id>: the node starts an election (a pre-vote first, if enabled). */
  campaign: (env, cmd) => env.node(cmd.args[0]).raw.campaign(),

  /** propose <id> <data>: on the leader, appends; on a follower, forwards to the leader. */
  propose: (env, cmd) => {
    const n = env.node(cmd.args[0]);
    if (cmd.args[1] === undefined) throw new ScriptError('propose <id> <data>');
    const at = n.raw.forwardProposal(data(cmd.args[1]));
    if (at) env.print(`appended at ${at.term}/${at.index}`);
  },

  /**
   * propose-conf-change <id> add|add-learner|remove <node>: on the leader, appends the
   * configuration change (promote a learner with add); refused elsewhere or while one is pending.
   */
  'propose-conf-change': (env, cmd) => {
    const n = env.node(cmd.args[0]);
    const type = CONF_CHANGE_TYPES[cmd.args[1] ?? ''];
    const nodeId = Number(cmd.args[2]);
    if (type === undefined || !Number.isSafeInteger(nodeId)) throw new ScriptError('propose-conf-change <id> add|add-learner|remove <node>');
    const at = n.raw.proposeConfChange({ type, nodeId });
    env.print(`appended at ${at.term}/${at.index}`);
  },

  /** conf [<id>...]: each node's configuration (voters, learners) as it has applied it. */
  conf: (env, cmd) => {
    for (const n of env.nodesOf(cmd)) env.print(`${n.id}: ${describeConfState(n.raw.status().config)}`);
  },

  /** transfer-leadership <from> <to>: asks node `from` (the leader, or forwarded to it) to hand leadership to `to`. */
  'transfer-leadership': (env, cmd) => {
    const to = env.node(cmd.args[1]);
    env.node(cmd.args[0]).raw.transferLeadership(to.id);
  },

  /** process-ready [<id>...]: handles each node's Ready (every node's if none is named). */
  'process-ready': (env, cmd) => {
    for (const n of env.nodesOf(cmd)) if (!env.processReady(n)) env.print(`> ${n.id} has no Ready`);
  },

  /** deliver-msgs [<id>...] [drop=true]: delivers (or drops) the queued messages to each node. */
  'deliver-msgs': (env, cmd) => {
    const drop = flag(cmd, 'drop', false);
    for (const n of env.nodesOf(cmd)) env.deliver(n, drop);
  },

  /** stabilize [<id>...]: handles Readies and delivers messages among the nodes until nothing moves. */
  stabilize: (env, cmd) => {
    const nodes = env.nodesOf(cmd);
    for (let round = 0; ; round++) {
      if (round > 1000) throw new ScriptError('stabilize: no end after 1000 rounds');
      let moved = false;
      for (const n of nodes) moved = env.processReady(n) || moved;
      for (const n of nodes) moved = env.deliver(n) || moved;
      if (!moved) return;
    }
  },

  /** tick-heartbeat [<id>...]: heartbeatTick ticks. */
  'tick-heartbeat': (env, cmd) => {
    for (const n of env.nodesOf(cmd)) for (let i = 0; i < n.config.heartbeatTick; i++) n.raw.tick();
  },

  /** tick-election [<id>...]: electionTick ticks (a follower's election timeout; a leader's CheckQuorum round). */
  'tick-election': (env, cmd) => {
    for (const n of env.nodesOf(cmd)) for (let i = 0; i < n.config.electionTick; i++) n.raw.tick();
  },

  /** partition <ids> <ids>...: e.g. `partition 1,2 3,4,5`; links between groups drop messages. */
  partition: (env, cmd) => {
    if (cmd.args.length < 2) throw new ScriptError('partition <ids> <ids>...');
    env.partition(cmd.args.map(ids));
  },

  /** isolate <id>: every link to and from the node drops messages. */
  isolate: (env, cmd) => {
    const n = env.node(cmd.args[0]);
    env.partition([[n.id], [...env.nodes.keys()].filter((id) => id !== n.id)]);
  },

  /** heal: every link carries messages again. */
  heal: (env) => env.cut.clear(),

  /** status [<id>...]: role, term, vote, indexes; on a leader, each voter's progress. */
  status: (env, cmd) => {
    for (const n of env.nodesOf(cmd)) env.print(describeStatus(n.raw.status()));
  },

  /** raft-log <id>: what the node has persisted: its snapshot, if any, and its entries. */
  'raft-log': (env, cmd) => {
    const n = env.node(cmd.args[0]);
    if (n.disk.snapshot) env.print(`snapshot ${describeSnapshotMetadata(n.disk.snapshot.metadata)}`);
    if (n.disk.entries.length === 0) env.print('log is empty');
    env.print(...n.disk.entries.map(describeEntry));
  },
};

/** Runs a script: each stanza's actual output, in order. */
export function runScript(parts: ScriptPart[]): Map<Stanza, string[]> {
  const env = new InteractionEnv();
  const outputs = new Map<Stanza, string[]>();
  for (const p of parts) if ('stanza' in p) outputs.set(p.stanza, env.handle(p.stanza.command));
  return outputs;
}

/** The first stanza whose output differs from what the script expects, as a readable report. */
export function firstMismatch(file: string, parts: ScriptPart[], outputs: Map<Stanza, string[]>): string | undefined {
  for (const p of parts) {
    if (!('stanza' in p)) continue;
    const { stanza } = p;
    const actual = outputs.get(stanza) ?? [];
    if (actual.join('\n') === stanza.expected.join('\n')) continue;
    return (
      `${file}:${stanza.line}: ${stanza.command}\n` +
      `output differs (- expected, + actual; QKV_REWRITE=1 rewrites the expected outputs):\n${diffLines(stanza.expected, actual)}`
    );
  }
  return undefined;
}
