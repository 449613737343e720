/**
 * Separate hosts on one machine: a network lab of Linux network namespaces that a test makes
 * and removes itself. One namespace holds a bridge (the lab's switch); each host is a namespace
 * of its own with a veth pair into the bridge and its own address, 10.<subnet>.0.<n>/24. Member
 * processes run inside their host's namespace (`ip netns exec`), listen on and advertise that
 * address, and reach each other across the bridge as across a LAN; clients run in a host of
 * their own. Nothing is routed out of the lab: no namespace of it has a default route or a link
 * to the machine's own namespace.
 *
 * Needs root (CAP_NET_ADMIN) and iproute2's `ip`: `npm run test:hosts`.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Interface names are at most 15 bytes: names stay short, unique to this process. */
const TAG = `q${process.pid % 100_000}`;

export interface LabHost {
  name: string;
  /** The host's network namespace. */
  ns: string;
  /** Its address on the lab's LAN. */
  addr: string;
  /** Its veth end in the bridge namespace (set down to cut the host off). */
  bridgePort: string;
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

  private constructor(readonly id: string) {
    this.bridgeNs = `${id}-br`;
    // The subnet only has to differ from the machine's own networks; labs are isolated anyway.
    this.subnet = 100 + (process.pid % 100);
  }

  /** A lab with `names` hosts on one bridge. */
  static create(names: string[]): NetworkLab {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // Also when the test process dies of a failure: no namespace outlives it.
      process.once('exit', () => {
        for (const ns of [...live]) removeNamespace(ns);
      });
    }
    const lab = new NetworkLab(`${TAG}${Math.random().toString(36).slice(2, 5)}`);
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

  private addNamespace(ns: string): void {
    ip('netns', 'add', ns);
    live.add(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  private addHost(name: string): LabHost {
    const n = this.hosts.length + 1;
    const host: LabHost = { name, ns: `${this.id}-${name}`, addr: `10.${this.subnet}.0.${n}`, bridgePort: `p${n}` };
    this.addNamespace(host.ns);
    // Both ends made inside their namespaces: nothing appears in the machine's own, even briefly.
    ip('link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', host.bridgePort, 'netns', this.bridgeNs);
    ip('-n', this.bridgeNs, 'link', 'set', host.bridgePort, 'master', 'br0');
    ip('-n', this.bridgeNs, 'link', 'set', host.bridgePort, 'up');
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

  /** Cuts a host off the LAN (its switch port down), as a pulled cable; `linkUp` plugs it back. */
  linkDown(name: string): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.host(name).bridgePort, 'down');
  }

  linkUp(name: string): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.host(name).bridgePort, 'up');
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
    for (const h of this.hosts) removeNamespace(h.ns);
    removeNamespace(this.bridgeNs);
  }
}
