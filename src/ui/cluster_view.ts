/// <reference lib="dom" />
/**
 * The cluster view: the member list (from the serving member) and each member's own
 * /v1/status, polled every second. A member that does not answer within REQUEST_TIMEOUT_MS is
 * shown down; the others' lag is the leader's commit index minus their applied index. Every
 * METRICS_EVERY polls each member's /metrics gives its WAL fsync and apply latency sparklines
 * (the mean per interval); the leader changes this page has seen are listed below the table.
 */
import type { V1Member, V1MembersResponse, V1StatusResponse } from '../api/v1.js';
import { formatBytes } from './bytes.js';
import { byId, errorText, getJson, h } from './dom.js';
import { MeanSeries, SERIES_POINTS } from './prometheus.js';

const POLL_MS = 1000;
/** The member list changes rarely: read again every this many polls. */
const MEMBERS_EVERY = 5;
/** Scrape each member's /metrics every this many polls. */
const METRICS_EVERY = 2;
/** Leader changes listed at most (the latest). */
const LEADER_CHANGES = 20;

interface Latencies {
  fsync: MeanSeries;
  apply: MeanSeries;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A sparkline of a series (a gap for an interval without observations), its latest mean as a label. */
function sparkline(series: MeanSeries, name: string): HTMLTableCellElement {
  const w = 90;
  const ht = 22;
  const values = series.points;
  const max = Math.max(1e-9, ...values.map((v) => v ?? 0));
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(ht));
  svg.setAttribute('viewBox', `0 0 ${w} ${ht}`);
  let d = '';
  // One slot per interval kept, the newest at the right edge; an isolated point is a short dash.
  const step = w / (SERIES_POINTS - 1);
  values.forEach((v, i) => {
    if (v === null) return;
    const x = w - (values.length - 1 - i) * step;
    const y = ht - 1 - (v / max) * (ht - 2);
    d += i > 0 && values[i - 1] !== null && values[i - 1] !== undefined ? `L${x.toFixed(1)},${y.toFixed(1)}` : `M${(x - 1).toFixed(1)},${y.toFixed(1)}h1`;
  });
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', '#2f5fd0');
  path.setAttribute('stroke-width', '1.5');
  svg.append(path);
  const latest = series.latest();
  const points = values.filter((v) => v !== null).length;
  return h(
    'td',
    { 'data-spark': name, 'data-points': String(points), title: `${name}: mean per ${METRICS_EVERY} s interval, last ${values.length} intervals` },
    svg,
    h('span', { class: 'count' }, latest === null ? '' : `${(latest * 1000).toFixed(2)} ms`),
  );
}

type Answer = { ok: true; status: V1StatusResponse } | { ok: false; error: string };

const hexId = (id: string): string => BigInt(id).toString(16);

function cell(text: string | number, cls = ''): HTMLTableCellElement {
  return h('td', cls ? { class: cls } : {}, String(text));
}

function render(members: V1Member[], answers: Map<string, Answer>, latencies: Map<string, Latencies>, changes: LeaderChange[]): void {
  const up = [...answers.values()].flatMap((a) => (a.ok ? [a.status] : []));
  // The leader as the members that answer see it, in the highest term any reports.
  const withLeader = up.filter((s) => s.leader !== null).sort((a, b) => b.term - a.term)[0];
  const leaderId = withLeader?.leader?.id;
  const leaderAnswer = leaderId !== undefined ? answers.get(leaderId) : undefined;
  const leaderStatus = leaderAnswer?.ok ? leaderAnswer.status : undefined;
  byId('summary').textContent = withLeader?.leader
    ? `leader ${withLeader.leader.name || hexId(withLeader.leader.id)} · term ${withLeader.term} · ${up.length}/${members.length} members up`
    : `no leader · ${up.length}/${members.length} members up`;
  const rows = members.map((m) => {
    const a = answers.get(m.id);
    const role = m.id === leaderId ? 'leader' : m.is_learner ? 'learner' : 'follower';
    const s = a?.ok ? a.status : undefined;
    const state = a === undefined ? cell('…', 'muted') : a.ok ? cell('up', 'up') : h('td', { class: 'down', title: a.error }, 'down');
    const lag = s && leaderStatus ? String(Math.max(0, leaderStatus.raft_index - s.raft_applied_index)) : '';
    return h(
      'tr',
      { 'data-member': m.name, 'data-state': a === undefined ? 'unknown' : a.ok ? 'up' : 'down', 'data-role': role },
      cell(m.name || '(unstarted)'),
      cell(hexId(m.id)),
      state,
      cell(role),
      cell(m.client_urls.join(' ')),
      cell(m.peer_urls.join(' ')),
      cell(s?.term ?? '', 'num'),
      cell(s?.raft_index ?? '', 'num'),
      cell(s?.raft_applied_index ?? '', 'num'),
      cell(lag, 'num'),
      cell(s?.revision ?? '', 'num'),
      cell(s ? formatBytes(s.db_size) : '', 'num'),
      sparkline(latencies.get(m.id)?.fsync ?? new MeanSeries(''), 'fsync'),
      sparkline(latencies.get(m.id)?.apply ?? new MeanSeries(''), 'apply'),
    );
  });
  byId('members').replaceChildren(...rows);
  byId('leader-changes').replaceChildren(
    ...changes.map((c) =>
      h('li', { 'data-term': String(c.term) }, `${c.at.toISOString().slice(11, 19)} · term ${c.term} · ${c.leader ? `leader ${c.leader}` : 'no leader'}`),
    ),
  );
}

interface LeaderChange {
  at: Date;
  term: number;
  leader: string | null;
}

/** A change of leader or term as the members' answers show it, or undefined when they show none. */
function leaderChange(answers: Map<string, Answer>, last: LeaderChange | undefined): LeaderChange | undefined {
  const up = [...answers.values()].flatMap((a) => (a.ok ? [a.status] : []));
  const newest = up.sort((a, b) => b.term - a.term)[0];
  if (!newest) return undefined;
  const leader = newest.leader ? newest.leader.name || hexId(newest.leader.id) : null;
  if (last && last.term === newest.term && last.leader === leader) return undefined;
  return { at: new Date(), term: newest.term, leader };
}

async function scrape(m: V1Member, l: Latencies): Promise<void> {
  const url = m.client_urls[0];
  if (!url) return;
  try {
    const res = await fetch(`${url.replace(/\/$/, '')}/metrics`, { signal: AbortSignal.timeout(1500), cache: 'no-store' });
    if (!res.ok) return;
    const text = await res.text();
    l.fsync.add(text);
    l.apply.add(text);
  } catch {
    // down: the status poll shows it
  }
}

async function statusOf(m: V1Member): Promise<Answer> {
  const url = m.client_urls[0];
  if (!url) return { ok: false, error: 'no client URL (not started yet)' };
  try {
    return { ok: true, status: await getJson<V1StatusResponse>(`${url.replace(/\/$/, '')}/v1/status`) };
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
}

export function startClusterView(): void {
  let members: V1Member[] = [];
  let polls = 0;
  const latencies = new Map<string, Latencies>();
  const changes: LeaderChange[] = [];
  const poll = async (): Promise<void> => {
    if (polls++ % MEMBERS_EVERY === 0 || members.length === 0) {
      try {
        members = (await getJson<V1MembersResponse>('/v1/members')).members;
      } catch {
        // the serving member is down or without quorum: keep the last list
      }
    }
    const answers = new Map<string, Answer>();
    const scraping = polls % METRICS_EVERY === 0;
    await Promise.all(
      members.map(async (m) => {
        answers.set(m.id, await statusOf(m));
        if (!scraping) return;
        let l = latencies.get(m.id);
        if (!l)
          latencies.set(
            m.id,
            (l = { fsync: new MeanSeries('etcd_disk_wal_fsync_duration_seconds'), apply: new MeanSeries('qkv_server_apply_duration_seconds') }),
          );
        await scrape(m, l);
      }),
    );
    const change = leaderChange(answers, changes[0]);
    if (change) {
      changes.unshift(change);
      if (changes.length > LEADER_CHANGES) changes.pop();
    }
    render(members, answers, latencies, changes);
    setTimeout(() => void poll(), POLL_MS);
  };
  void poll();
}
