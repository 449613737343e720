/**
 * Separate hosts on one machine: a network lab of Linux network namespaces that a test makes
 * and removes itself. One namespace holds a bridge (the lab's switch); each host is a namespace
 * of its own with a veth pair into the bridge and its own address, 10.<subnet>.0.<n>/24. Member
 * processes run inside their host's namespace (`ip netns exec`), listen on and advertise that
 * address, and reach each other across the bridge as across a LAN; clients run in a host of
 * their own. Nothing is routed out of the lab: no namespace of it has a default route or a link
 * to the machine's own namespace.
 *
 * A WAN lab (`createWan`) has no bridge: each host's interface is a TUN device of
 * wan_switch.py, a user-space switch that delays, jitters, loses and reorders each host's
 * outgoing packets as told (`shape`), because this machine's kernel has no netem qdisc.
 *
 * Needs root (CAP_NET_ADMIN) and iproute2's `ip` (and python3 for a WAN lab): `npm run test:hosts`.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';

const WAN_SWITCH = path.join(import.meta.dirname, 'wan_switch.py');

/** A host's outgoing link on a WAN lab, as netem's parameters. */
export interface LinkShape {
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  reorderPct?: number;
  /** Packets to and from this host are not shaped at all (a client next to its member). */
  near?: boolean;
}

/** Interface names are at most 15 bytes: names stay short, unique to this process. */
const TAG = `q${process.pid % 100_000}`;

export interface LabHost {
  name: string;
  /** The host's network namespace. */
  ns: string;
  /** Its address on the lab's LAN. */
  addr: string;
  /** Its veth end in the bridge namespace (set down to cut the host off); none on a WAN lab. */
  bridgePort?: string;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Every namespace this process made, for the exit handler. */
const live = new Set<string>();
let exitHookInstalled = false;

function removeNamespace(ns: string): void {
  try {
    // Deleting the namespace deletes its veth ends, and with them their peers.
    ip('netns', 'del', ns);
  } catch {
    // already gone
  }
  live.delete(ns);
}

export class NetworkLab {
  readonly hosts: LabHost[] = [];
  private readonly bridgeNs: string;
  private readonly subnet: number;
  /** A WAN lab's switch, and its answers. */
  private wan: { proc: ChildProcess; lines: Interface; answers: string[]; waiting: ((line: string) => void)[] } | undefined;

  private constructor(readonly id: string) {
    this.bridgeNs = `${id}-br`;
    // The subnet only has to differ from the machine's own networks; labs are isolated anyway.
    this.subnet = 100 + (process.pid % 100);
  }

  /** A lab with `names` hosts on one bridge. */
  static create(names: string[]): NetworkLab {
    const lab = NetworkLab.empty();
    try {
      lab.addNamespace(lab.bridgeNs);
      ip('-n', lab.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', lab.bridgeNs, 'link', 'set', 'br0', 'up');
      names.forEach((name) => lab.addHost(name));
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  private static empty(): NetworkLab {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // Also when the test process dies of a failure: no namespace outlives it.
      process.once('exit', () => {
        for (const ns of [...live]) removeNamespace(ns);
      });
    }
    return new NetworkLab(`${TAG}${Math.random().toString(36).slice(2, 5)}`);
  }

  /** A lab whose hosts are joined by wan_switch.py, which shapes each host's outgoing link. */
  static async createWan(names: string[]): Promise<NetworkLab> {
    const lab = NetworkLab.empty();
    const tuns = names.map((_, i) => `${lab.id}t${i + 1}`);
    const addrs = names.map((_, i) => `10.${lab.subnet}.0.${i + 1}`);
    const proc = spawn('python3', [WAN_SWITCH, ...tuns.map((t, i) => `${t}=${addrs[i]}`)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout! });
    const wan = { proc, lines, answers: [] as string[], waiting: [] as ((line: string) => void)[] };
    lines.on('line', (line) => {
      const waiter = wan.waiting.shift();
      if (waiter) waiter(line);
      else wan.answers.push(line);
    });
    lab.wan = wan;
    try {
      const ready = await lab.nextLine();
      if (ready !== 'ready') throw new Error(`wan_switch.py: ${ready}`);
      names.forEach((name, i) => {
        const host: LabHost = { name, ns: `${lab.id}-${name}`, addr: addrs[i]! };
        lab.addNamespace(host.ns);
        // The switch made the device here; it lives on in the host's namespace, its fd in the switch.
        ip('link', 'set', tuns[i]!, 'netns', host.ns);
        ip('-n', host.ns, 'link', 'set', tuns[i]!, 'name', 'eth0');
        ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0');
        ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
        lab.hosts.push(host);
      });
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  private nextLine(): Promise<string> {
    const wan = this.wan!;
    const ready = wan.answers.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      wan.waiting.push(resolve);
      wan.proc.once('exit', (code) => reject(new Error(`wan_switch.py exited (${code})`)));
    });
  }

  /** Shapes the packets `name` sends (delay, jitter, loss, reordering), on a WAN lab. */
  async shape(name: string, link: LinkShape): Promise<void> {
    if (!this.wan) throw new Error('shape: not a WAN lab (NetworkLab.createWan)');
    this.wan.proc.stdin!.write(`${JSON.stringify({ host: this.host(name).addr, ...link })}\n`);
    const answer = await this.nextLine();
    if (answer !== 'ok') throw new Error(`wan_switch.py: ${answer}`);
  }

  private addNamespace(ns: string): void {
    ip('netns', 'add', ns);
    live.add(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  private addHost(name: string): LabHost {
    const n = this.hosts.length + 1;
    const bridgePort = `p${n}`;
    const host: LabHost = { name, ns: `${this.id}-${name}`, addr: `10.${this.subnet}.0.${n}`, bridgePort };
    this.addNamespace(host.ns);
    // Both ends made inside their namespaces: nothing appears in the machine's own, even briefly.
    ip('link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', bridgePort, 'netns', this.bridgeNs);
    ip('-n', this.bridgeNs, 'link', 'set', bridgePort, 'master', 'br0');
    ip('-n', this.bridgeNs, 'link', 'set', bridgePort, 'up');
    ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0');
    ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
    this.hosts.push(host);
    return host;
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in the lab`);
    return h;
  }

  /** Starts `command` inside a host's namespace. */
  spawn(name: string, command: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.host(name).ns, command, ...args], opts);
  }

  /** Runs `command` inside a host's namespace to its end: its stdout, stderr and exit code. */
  run(name: string, command: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string; code: number | null }> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(name, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ stdout, stderr, code });
      });
    });
  }

  /**
   * Cuts a host off (its switch port down on a LAN lab, its interface down on a WAN lab), as a
   * pulled cable; `linkUp` plugs it back.
   */
  linkDown(name: string): void {
    this.setLink(name, 'down');
  }

  linkUp(name: string): void {
    this.setLink(name, 'up');
    // An interface set down loses its address's routes: put them back with it.
    const h = this.host(name);
    if (!h.bridgePort) ip('-n', h.ns, 'route', 'replace', `10.${this.subnet}.0.0/24`, 'dev', 'eth0', 'src', h.addr);
  }

  private setLink(name: string, state: 'up' | 'down'): void {
    const h = this.host(name);
    if (h.bridgePort) ip('-n', this.bridgeNs, 'link', 'set', h.bridgePort, state);
    else ip('-n', h.ns, 'link', 'set', 'eth0', state);
  }

  /** The lab's namespaces that exist now (for the test that checks they are gone). */
  namespaces(): string[] {
    const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return listed
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((ns) => ns.startsWith(`${this.id}-`));
  }

  /** Removes every namespace of the lab (processes still inside lose their network). */
  destroy(): void {
    if (this.wan) {
      // At EOF the switch exits, and its TUN devices go with their last open fd.
      this.wan.proc.stdin!.end();
      this.wan.lines.close();
      this.wan.proc.kill('SIGTERM');
    }
    for (const h of this.hosts) removeNamespace(h.ns);
    removeNamespace(this.bridgeNs);
  }
}
