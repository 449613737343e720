/**
 * A LocalCluster whose every directed peer link goes through a FaultProxy, so link faults can
 * be injected per direction: partitions, asymmetric cuts, bridges, delays. Only the members of
 * the initial configuration are proxied: a member added at runtime (LocalCluster.addJoiner)
 * dials and is dialled directly, so link faults never cut its links.
 */
import { LocalCluster, type HarnessOptions } from '../server/cluster_harness.js';
import { FaultProxy } from './proxy.js';
import { freePorts } from '../server/ports.js';
import { hostPort } from '../../src/server/config.js';

export class ProxiedCluster {
  /** `${from}>${to}`: the link member `from` uses to reach `to`. */
  readonly links = new Map<string, FaultProxy>();

  private constructor(readonly cluster: LocalCluster) {}

  static async create(opts: HarnessOptions = {}): Promise<ProxiedCluster> {
    const cluster = await LocalCluster.create(opts);
    const pc = new ProxiedCluster(cluster);
    const members = cluster.config.members;
    const ports = await freePorts(members.length * (members.length - 1));
    let i = 0;
    for (const from of members) {
      const dial: string[] = [];
      for (const to of members) {
        if (from.id === to.id) continue;
        const port = ports[i++]!;
        const proxy = new FaultProxy(port, hostPort(to.peerUrl));
        await proxy.start();
        pc.links.set(`${from.name}>${to.name}`, proxy);
        dial.push(`${to.name}=127.0.0.1:${port}`);
      }
      cluster.extraArgs.set(from.name, ['--peer-dial', dial.join(',')]);
    }
    return pc;
  }

  link(from: string, to: string): FaultProxy {
    return this.links.get(`${from}>${to}`)!;
  }

  /** Cuts every link between the two sides, both directions. */
  split(sideA: string[]): void {
    const a = new Set(sideA);
    for (const [k, p] of this.links) {
      const [from, to] = k.split('>') as [string, string];
      if (a.has(from) !== a.has(to)) p.cut();
    }
  }

  /** `bridge` hears and is heard by both sides; the sides do not hear each other. */
  bridge(sideA: string[], bridge: string): void {
    const a = new Set(sideA);
    for (const [k, p] of this.links) {
      const [from, to] = k.split('>') as [string, string];
      if (from === bridge || to === bridge) continue;
      if (a.has(from) !== a.has(to)) p.cut();
    }
  }

  /** Only the links from `node` are cut: it hears the others, they never hear it. */
  silence(node: string): void {
    for (const [k, p] of this.links) if (k.startsWith(`${node}>`)) p.cut();
  }

  delayAll(ms: number): void {
    for (const p of this.links.values()) p.delay(ms);
  }

  heal(): void {
    for (const p of this.links.values()) p.heal();
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
    await Promise.all([...this.links.values()].map((p) => p.stop()));
  }
}
