import { describe, expect, test } from 'vitest';
import path from 'node:path';
import { ConfigError, loadClusterConfig, parseClusterConfig } from '../../src/server/config.js';

const member = (i: number) => ({
  id: i,
  name: `n${i}`,
  clientUrl: `http://127.0.0.1:${2379 + i * 10}`,
  peerUrl: `http://127.0.0.1:${2380 + i * 10}`,
  dataDir: `data/n${i}`,
});

describe('cluster config', () => {
  test('the shipped cluster.config.json is a valid 3-member cluster', () => {
    const cfg = loadClusterConfig(path.resolve('cluster.config.json'));
    expect(cfg.members.map((m) => m.name)).toEqual(['n1', 'n2', 'n3']);
    expect(cfg.members[0]!.dataDir).toBe(path.resolve('data/n1'));
    expect(cfg.electionTicks).toBeGreaterThan(cfg.heartbeatTicks);
  });

  test('defaults fill missing tuning fields', () => {
    const cfg = parseClusterConfig({ members: [member(1)] }, '/base');
    expect(cfg).toMatchObject({ tickMs: 100, heartbeatTicks: 1, electionTicks: 10, maxRequestBytes: 1572864 });
    expect(cfg.members[0]!.dataDir).toBe('/base/data/n1');
  });

  const bad: { name: string; raw: unknown; message: RegExp }[] = [
    { name: 'not an object', raw: [], message: /expected a JSON object/ },
    { name: 'no members', raw: { members: [] }, message: /members: expected a non-empty array/ },
    { name: 'bad id', raw: { members: [{ ...member(1), id: -1 }] }, message: /members\[0\]\.id: expected a positive integer/ },
    { name: 'bad url', raw: { members: [{ ...member(1), clientUrl: 'nope' }] }, message: /clientUrl: invalid URL/ },
    { name: 'https', raw: { members: [{ ...member(1), peerUrl: 'https://127.0.0.1:1' }] }, message: /only http/ },
    { name: 'no port', raw: { members: [{ ...member(1), peerUrl: 'http://127.0.0.1' }] }, message: /explicit port/ },
    { name: 'duplicate id', raw: { members: [member(1), { ...member(2), id: 1 }] }, message: /duplicate id 1/ },
    { name: 'duplicate client url', raw: { members: [member(1), { ...member(2), clientUrl: member(1).clientUrl }] }, message: /duplicate clientUrl/ },
    { name: 'election not above heartbeat', raw: { electionTicks: 1, heartbeatTicks: 1, members: [member(1)] }, message: /electionTicks/ },
  ];
  test.each(bad)('rejects $name with a clear error', ({ raw, message }) => {
    expect(() => parseClusterConfig(raw as never, '/base')).toThrow(ConfigError);
    expect(() => parseClusterConfig(raw as never, '/base')).toThrow(message);
  });

  test('unreadable and malformed files name the file', () => {
    expect(() => loadClusterConfig('/nonexistent/cluster.json')).toThrow(/cluster.json: cannot read/);
  });
});
