/// <reference lib="dom" />
/**
 * The cluster view: the member list (from the serving member) and each member's own
 * /v1/status, polled every second. A member that does not answer within REQUEST_TIMEOUT_MS is
 * shown down; the others' lag is the leader's commit index minus their applied index.
 */
import type { V1Member, V1MembersResponse, V1StatusResponse } from '../api/v1.js';
import { formatBytes } from './bytes.js';
import { byId, errorText, getJson, h } from './dom.js';

const POLL_MS = 1000;
/** The member list changes rarely: read again every this many polls. */
const MEMBERS_EVERY = 5;

type Answer = { ok: true; status: V1StatusResponse } | { ok: false; error: string };

const hexId = (id: string): string => BigInt(id).toString(16);

function cell(text: string | number, cls = ''): HTMLTableCellElement {
  return h('td', cls ? { class: cls } : {}, String(text));
}

function render(members: V1Member[], answers: Map<string, Answer>): void {
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
    );
  });
  byId('members').replaceChildren(...rows);
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
  const poll = async (): Promise<void> => {
    if (polls++ % MEMBERS_EVERY === 0 || members.length === 0) {
      try {
        members = (await getJson<V1MembersResponse>('/v1/members')).members;
      } catch {
        // the serving member is down or without quorum: keep the last list
      }
    }
    const answers = new Map<string, Answer>();
    await Promise.all(members.map(async (m) => answers.set(m.id, await statusOf(m))));
    render(members, answers);
    setTimeout(() => void poll(), POLL_MS);
  };
  void poll();
}
