/**
 * A linearizability checker for register histories (read / write / compare-and-set per key),
 * after Wing & Gong and Lowe, with Porcupine's refinements: each key is checked on its own (a
 * history is linearizable iff each key's sub-history is: registers compose), and the search
 * memoizes (set of linearized ops, register value) so no state is explored twice.
 *
 * Operations whose outcome is unknown (a timeout) may have taken effect at any moment after
 * their invocation, or never: they get no return event, so the search may linearize them late
 * or not at all. Failed operations did not happen and are dropped; reads that failed or timed
 * out carry no information and are dropped too.
 */

export type RegisterOp =
  | { kind: 'read'; key: string; value?: string | null }
  | { kind: 'write'; key: string; value: string }
  | { kind: 'cas'; key: string; expected: string | null; value: string; succeeded?: boolean };

export interface HistoryEntry {
  id: number;
  client: number;
  op: RegisterOp;
  invoke: number;
  complete?: number;
  status: 'ok' | 'fail' | 'unknown';
}

export interface CheckResult {
  linearizable: boolean;
  failingKey?: string;
  /** The operation that could not be placed and the operations concurrent with it. */
  window?: HistoryEntry[];
  /** Search steps taken, over all keys. */
  explored: number;
  timedOut?: boolean;
}

type Value = string | null;

interface Event {
  kind: 'call' | 'return';
  /** Index of the op within the key's op list. */
  op: number;
  time: number;
  prev: Event | undefined;
  next: Event | undefined;
  /** On a call: its return event, if the op returned. */
  match: Event | undefined;
}

/** The register's transition: undefined if `op` cannot happen in `state`. */
function step(state: Value, op: RegisterOp): Value | undefined {
  switch (op.kind) {
    case 'read':
      return state === (op.value ?? null) ? state : undefined;
    case 'write':
      return op.value;
    case 'cas':
      if (op.succeeded === false) return state !== op.expected ? state : undefined;
      // Succeeded, or unknown: linearizing an unknown cas means it happened, and then it succeeded.
      return state === op.expected ? op.value : undefined;
  }
}

function relevant(e: HistoryEntry): boolean {
  if (e.status === 'fail') return false;
  if (e.status === 'unknown' && e.op.kind === 'read') return false;
  if (e.status === 'ok' && e.complete === undefined) return false;
  return true;
}

interface KeyResult {
  ok: boolean;
  explored: number;
  timedOut: boolean;
  /** Index (in the key's ops) of the op whose return could not be satisfied at the deepest point. */
  stuckOp?: number;
}

function checkKey(ops: HistoryEntry[], initial: Value, deadline: number, budget: { explored: number }): KeyResult {
  // Events in time order; at equal times calls come first (touching intervals overlap).
  const raw: { kind: 'call' | 'return'; op: number; time: number }[] = [];
  ops.forEach((e, i) => {
    raw.push({ kind: 'call', op: i, time: e.invoke });
    if (e.status === 'ok') raw.push({ kind: 'return', op: i, time: e.complete! });
  });
  raw.sort((a, b) => a.time - b.time || (a.kind === b.kind ? 0 : a.kind === 'call' ? -1 : 1));
  const head: Event = { kind: 'call', op: -1, time: -Infinity, prev: undefined, next: undefined, match: undefined };
  let tail = head;
  const calls: Event[] = new Array(ops.length);
  const returns: (Event | undefined)[] = new Array(ops.length);
  for (const r of raw) {
    const ev: Event = { ...r, prev: tail, next: undefined, match: undefined };
    tail.next = ev;
    tail = ev;
    if (r.kind === 'call') calls[r.op] = ev;
    else returns[r.op] = ev;
  }
  for (let i = 0; i < ops.length; i++) calls[i]!.match = returns[i];
  let returnsLeft = returns.filter((r) => r !== undefined).length;

  const unlink = (ev: Event): void => {
    ev.prev!.next = ev.next;
    if (ev.next) ev.next.prev = ev.prev;
  };
  const relink = (ev: Event): void => {
    ev.prev!.next = ev;
    if (ev.next) ev.next.prev = ev;
  };
  const lift = (call: Event): void => {
    unlink(call);
    if (call.match) {
      unlink(call.match);
      returnsLeft--;
    }
  };
  const unlift = (call: Event): void => {
    if (call.match) {
      relink(call.match);
      returnsLeft++;
    }
    relink(call);
  };

  let linearized = 0n;
  let state: Value = initial;
  const seen = new Set<string>();
  const stack: { call: Event; state: Value }[] = [];
  let entry = head.next;
  let explored = 0;
  let deepest = -1;
  let stuckOp: number | undefined;
  while (returnsLeft > 0) {
    if (++explored % 4096 === 0 && performance.now() > deadline) {
      budget.explored += explored;
      return { ok: false, explored, timedOut: true };
    }
    if (!entry) throw new Error('checker: ran off the event list');
    if (entry.kind === 'call') {
      const next = step(state, ops[entry.op]!.op);
      if (next !== undefined) {
        const bits = linearized | (1n << BigInt(entry.op));
        const key = `${bits.toString(36)}:${next ?? '\u0000'}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          linearized = bits;
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
      continue;
    }
    // A return reached with its op not linearized: undo the last choice.
    if (stack.length > deepest) {
      deepest = stack.length;
      stuckOp = entry.op;
    }
    const top = stack.pop();
    if (!top) {
      budget.explored += explored;
      return { ok: false, explored, timedOut: false, ...(stuckOp !== undefined ? { stuckOp } : {}) };
    }
    unlift(top.call);
    linearized &= ~(1n << BigInt(top.call.op));
    state = top.state;
    entry = top.call.next;
  }
  budget.explored += explored;
  return { ok: true, explored, timedOut: false };
}

/**
 * The op that could not be placed, every op concurrent with it, and the last few ops that
 * completed just before it was invoked (the writes it should have seen).
 */
function failingWindow(ops: HistoryEntry[], stuck: HistoryEntry): HistoryEntry[] {
  const end = stuck.complete ?? Infinity;
  const concurrent = ops.filter((o) => o.invoke <= end && (o.complete ?? Infinity) >= stuck.invoke);
  const before = ops
    .filter((o) => o.complete !== undefined && o.complete < stuck.invoke)
    .sort((a, b) => b.complete! - a.complete!)
    .slice(0, 3);
  return [...new Set([...before, ...concurrent])].sort((a, b) => a.invoke - b.invoke);
}

/**
 * Drops unknown writes and compare-and-sets that cannot matter: one whose value no read ever
 * returned and no compare-and-set ever expected, when no failed compare-and-set on the key ends
 * after it was invoked (a failed cas is the only op whose outcome a never-seen value can
 * explain). Leaving such an op out is always a valid choice for the search, so removing it
 * changes no verdict; it only spares the search the 2^n ways of placing n of them.
 */
function pruneUnobservable(ops: HistoryEntry[]): HistoryEntry[] {
  const observed = new Set<string | null>();
  for (const e of ops) {
    if (e.op.kind === 'read' && e.status === 'ok') observed.add(e.op.value ?? null);
    if (e.op.kind === 'cas') observed.add(e.op.expected);
  }
  const failedCasEnds = ops.filter((e) => e.op.kind === 'cas' && e.op.succeeded === false).map((e) => e.complete ?? Infinity);
  return ops.filter((e) => {
    if (e.status !== 'unknown' || e.op.kind === 'read') return true;
    if (observed.has(e.op.value)) return true;
    return failedCasEnds.some((end) => end >= e.invoke);
  });
}

/** Checks a whole history: linearizable iff every key's sub-history is. */
export function checkRegisterHistory(history: HistoryEntry[], opts: { timeoutMs?: number; initial?: string | null } = {}): CheckResult {
  const deadline = performance.now() + (opts.timeoutMs ?? 10_000);
  const byKey = new Map<string, HistoryEntry[]>();
  for (const e of history) {
    if (!relevant(e)) continue;
    let list = byKey.get(e.op.key);
    if (!list) byKey.set(e.op.key, (list = []));
    list.push(e);
  }
  const budget = { explored: 0 };
  for (const [key, all] of byKey) {
    const ops = pruneUnobservable(all);
    const r = checkKey(ops, opts.initial ?? null, deadline, budget);
    if (r.timedOut) return { linearizable: false, timedOut: true, failingKey: key, explored: budget.explored };
    if (!r.ok) {
      const stuck = r.stuckOp !== undefined ? ops[r.stuckOp]! : undefined;
      return { linearizable: false, failingKey: key, window: stuck ? failingWindow(ops, stuck) : ops, explored: budget.explored };
    }
  }
  return { linearizable: true, explored: budget.explored };
}
