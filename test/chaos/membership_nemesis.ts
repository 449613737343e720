/**
 * The chaos run's membership nemesis: each step() makes one change of a cycle that keeps the
 * cluster between 3 and 5 voters, as an operator would with etcd's Cluster API over the
 * gateway: add a learner (then start it with etcd's flags and --initial-cluster-state
 * existing), promote it once it has caught up, or remove a member (every other removal the
 * leader's own): at 3 voters it adds, at 5 it removes, at 4 it draws which (a random walk, so
 * that short runs see removals too). The state is read from the leader's member
 * list at each step, so a change whose outcome was unknown is seen as it happened.
 *
 * New members are made by `addJoiner` (ProxiedCluster's: their peer links go through fault
 * proxies as the initial members' do, so partitions cut them too).
 */
import type { Member } from '../../src/api/types.js';
import { Client } from '../../src/client/client.js';
import { QkvServerError } from '../../src/client/errors.js';
import { LocalCluster } from '../server/cluster_harness.js';

export interface MembershipSteps {
  added: number;
  promoted: number;
  removed: number;
  /** Removals of the member that was leader when it was removed. */
  removedLeader: number;
  /** Steps not taken: no leader, a member down, the change refused or timed out. */
  skipped: number;
}

const MIN_VOTERS = 3;
const MAX_VOTERS = 5;
/** How long a promotion is retried while the learner is not in sync. */
const PROMOTE_PATIENCE_MS = 20_000;
/** A removed member exits about 1 s after it applies its removal. */
const EXIT_PATIENCE_MS = 20_000;

/** The member the cluster's members agree is leader, asking each in turn. */
export async function leaderOf(cluster: LocalCluster): Promise<string | undefined> {
  for (const n of cluster.procs.keys()) {
    const s = await cluster.status(n);
    if (s?.leader && cluster.names.includes(s.leader.name)) return s.leader.name;
  }
  return undefined;
}

export class MembershipNemesis {
  readonly steps: MembershipSteps = { added: 0, promoted: 0, removed: 0, removedLeader: 0, skipped: 0 };
  /** Members removed from the cluster, whose logs a failed run keeps too. */
  readonly removedNames: string[] = [];
  private nextNumber: number;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly rand: (n: number) => number,
    private readonly log: (line: string) => void,
    /** Whether a member is down (killed, not restarted yet, or paused) by another fault. */
    private readonly isDown: (name: string) => boolean,
    /** Makes a new member known to the harness (not started): its URLs. */
    private readonly addJoiner: (name: string) => Promise<{ peerUrl: string }> = (name) => cluster.addJoiner(name),
  ) {
    this.nextNumber = cluster.names.length + 1;
  }

  private nameOf(m: Member): string | undefined {
    return this.cluster.config.members.find((x) => m.peerUrls.includes(x.peerUrl))?.name;
  }

  private async membersSeenBy(leader: string): Promise<Member[]> {
    return (await new Client({ endpoints: [this.cluster.url(leader)], timeoutMs: 5_000 }).memberList()).members;
  }

  /** One step of the cycle; skipped (and counted so) when the cluster is not in a state for it. */
  async step(): Promise<void> {
    const leader = await leaderOf(this.cluster);
    if (!leader) return this.skip('no leader');
    let members: Member[];
    try {
      members = await this.membersSeenBy(leader);
    } catch (err) {
      return this.skip(`member list: ${(err as Error).message}`);
    }
    await this.dropMissing(members, leader);
    const learner = members.find((m) => m.isLearner);
    const voters = members.filter((m) => !m.isLearner);
    // A learner the harness does not know: an addition reported failed that happened after all.
    if (learner && !this.nameOf(learner)) return this.removeUnknown(learner);
    if (learner) return this.promote(learner);
    const grow = voters.length <= MIN_VOTERS || (voters.length < MAX_VOTERS && this.rand(2) === 0);
    if (grow) return this.addLearner(leader, members);
    return this.remove(leader, voters);
  }

  /** Before the final checks: the harness's members as the leader lists them (a removal whose answer was lost). */
  async settle(): Promise<void> {
    const leader = await leaderOf(this.cluster);
    const members = leader && (await this.membersSeenBy(leader).catch(() => undefined));
    if (leader && members) await this.dropMissing(members, leader);
  }

  /** Members of the harness the leader no longer lists: removed by a change whose answer was lost. */
  private async dropMissing(members: Member[], leader: string): Promise<void> {
    for (const name of this.cluster.names) {
      if (members.some((m) => m.peerUrls.includes(this.cluster.config.members.find((x) => x.name === name)!.peerUrl))) continue;
      this.log(`  membership: ${name} is no longer listed: removed after all`);
      await this.dropRemoved(name, name === leader);
    }
  }

  private async removeUnknown(learner: Member): Promise<void> {
    try {
      await this.cluster.client().memberRemove(learner.id);
      this.log(`  membership: removed learner ${learner.id}, added by a request reported failed`);
    } catch (err) {
      this.skip(`remove learner ${learner.id}: ${(err as Error).message}`);
    }
  }

  private skip(why: string): void {
    this.steps.skipped++;
    this.log(`  membership: step skipped (${why})`);
  }

  private async addLearner(leader: string, members: Member[]): Promise<void> {
    const name = `n${this.nextNumber++}`;
    const joiner = await this.addJoiner(name);
    const client = this.cluster.client();
    try {
      await client.memberAdd([joiner.peerUrl], true);
    } catch (err) {
      // Unknown outcome: the leader's list says whether it happened.
      const now = await this.membersSeenBy(leader).catch(() => [] as Member[]);
      if (!now.some((m) => m.peerUrls.includes(joiner.peerUrl))) {
        this.cluster.forget(name);
        return this.skip(`add ${name}: ${(err as Error).message}`);
      }
    }
    const running = members.map((m) => this.nameOf(m)).filter((n): n is string => n !== undefined);
    this.cluster.setJoinCluster(name, [...running, name]);
    this.cluster.start(name);
    this.steps.added++;
    this.log(`  membership: added learner ${name}`);
  }

  private async promote(learner: Member): Promise<void> {
    const name = this.nameOf(learner) ?? learner.id;
    const client = this.cluster.client();
    const deadline = Date.now() + PROMOTE_PATIENCE_MS;
    for (;;) {
      try {
        await client.memberPromote(learner.id);
        this.steps.promoted++;
        this.log(`  membership: promoted ${name}`);
        return;
      } catch (err) {
        const notInSync = err instanceof QkvServerError && /in sync with leader/.test(err.message);
        if (!notInSync || Date.now() >= deadline) return this.skip(`promote ${name}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  private async remove(leader: string, voters: Member[]): Promise<void> {
    if (voters.length <= MIN_VOTERS) return this.skip('too few voters to remove one');
    // A majority must stay up after the removal: with every member up, any one may go.
    const down = this.cluster.names.filter((n) => this.isDown(n));
    if (down.length > 0) return this.skip(`${down.join(', ')} down`);
    const removeLeader = this.steps.removed % 2 === 0;
    const others = voters.filter((m) => this.nameOf(m) !== leader);
    const target = removeLeader ? voters.find((m) => this.nameOf(m) === leader) : others[this.rand(others.length)];
    const name = target && this.nameOf(target);
    if (!target || !name) return this.skip('no member to remove');
    try {
      await this.cluster.client().memberRemove(target.id);
    } catch (err) {
      const survivor = this.cluster.names.find((n) => n !== name)!;
      const now = await this.membersSeenBy(survivor).catch(() => voters);
      if (now.some((m) => m.id === target.id)) return this.skip(`remove ${name}: ${(err as Error).message}`);
    }
    await this.dropRemoved(name, name === leader);
  }

  /** Waits for a removed member's process to exit (killing it if it does not), then forgets it. */
  private async dropRemoved(name: string, wasLeader: boolean): Promise<void> {
    const exited = await LocalCluster.until(() => !this.cluster.procs.has(name), `${name} to exit`, EXIT_PATIENCE_MS).then(
      () => true,
      () => false,
    );
    if (!exited) {
      // Reported, then stopped by hand so that the run goes on without it.
      this.log(`  membership: REMOVED ${name} DID NOT EXIT within ${EXIT_PATIENCE_MS} ms; killed`);
      await this.cluster.kill(name, 'SIGKILL');
    }
    this.cluster.forget(name);
    this.removedNames.push(name);
    this.steps.removed++;
    if (wasLeader) this.steps.removedLeader++;
    this.log(`  membership: removed ${name}${wasLeader ? ' (the leader)' : ''}`);
  }
}
