/**
 * A LocalCluster whose every directed peer link goes through a FaultProxy, so link faults can
 * be injected per direction: partitions, asymmetric cuts, bridges, delays. Each member dials
 * its peers where its dial file says (`qkv serve --peer-dial @file`, read again on each dial),
 * by peer URL: a member added at runtime (addJoiner) gets a proxy per direction to and from
 * every member there, written into every dial file before the member is added, so link faults
 * cut its links as they cut the initial members'.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LocalCluster, type HarnessOptions } from '../server/cluster_harness.js';
import { FaultProxy } from './proxy.js';
import { freePorts } from '../server/ports.js';
import { hostPort } from '../../src/server/config.js';

export class ProxiedCluster {
  /** `${from}>${to}`: the link member `from` uses to reach `to`. */
  readonly links = new Map<string, FaultProxy>();

  private constructor(readonly cluster: LocalCluster) {}

  /** Member `name`'s dial file: `peerURL=host:port` lines. */
  private dialFile(name: string): string {
    return path.join(this.cluster.dir, `${name}.peer-dial`);
  }

  /** A proxy for the link `from` -> `to`, and its line in `from`'s dial file. */
  private async proxy(from: string, to: { name: string; peerUrl: string }): Promise<string> {
    const [port] = await freePorts(1);
    const proxy = new FaultProxy(port!, hostPort(to.peerUrl));
    await proxy.start();
    this.links.set(`${from}>${to.name}`, proxy);
    return `${to.peerUrl}=127.0.0.1:${port}\n`;
  }

  static async create(opts: HarnessOptions = {}): Promise<ProxiedCluster> {
    const cluster = await LocalCluster.create(opts);
    const pc = new ProxiedCluster(cluster);
    const members = cluster.config.members;
    for (const from of members) {
      let lines = '';
      for (const to of members) if (to.name !== from.name) lines += await pc.proxy(from.name, to);
      await writeFile(pc.dialFile(from.name), lines);
      cluster.extraArgs.set(from.name, ['--peer-dial', `@${pc.dialFile(from.name)}`]);
    }
    return pc;
  }

  /**
   * LocalCluster.addJoiner, with its links through proxies: to it from every member the harness
   * knows (their dial files get its peer URL first), and from it to each of them.
   */
  async addJoiner(name: string): Promise<{ clientUrl: string; peerUrl: string; dataDir: string }> {
    const others = this.cluster.config.members.filter((m) => m.name !== name);
    const joiner = await this.cluster.addJoiner(name);
    let lines = '';
    for (const m of others) {
      await appendFile(this.dialFile(m.name), await this.proxy(m.name, { name, peerUrl: joiner.peerUrl }));
      lines += await this.proxy(name, m);
    }
    await writeFile(this.dialFile(name), lines);
    this.cluster.extraArgs.set(name, ['--peer-dial', `@${this.dialFile(name)}`]);
    return joiner;
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
