/** The canonical text forms of src/raft/describe.ts that the interaction scripts do not all reach. */
import { describe, expect, test } from 'vitest';
import { describeBytes, describeEntry, describeHardState, describeMessage, describeReady } from '../../src/raft/describe.js';
import { message } from '../../src/raft/raft.js';
import { EntryType, MessageType, StateRole } from '../../src/raft/types.js';
import { data } from './harness.js';

describe('describe', () => {
  test('bytes: printable ASCII quoted, anything else (quotes and backslashes too) in hex', () => {
    expect(describeBytes(data('put k v'))).toBe('"put k v"');
    expect(describeBytes(new Uint8Array(0))).toBe('""');
    expect(describeBytes(new Uint8Array([0xe1, 0, 1]))).toBe('0xe10001');
    expect(describeBytes(data('a"b'))).toBe('0x612262');
  });

  test('entries and hard states', () => {
    expect(describeEntry({ term: 2, index: 7, type: EntryType.Normal, data: data('x') })).toBe('2/7 EntryNormal "x"');
    expect(describeHardState({ term: 3, vote: 2, commit: 9 })).toBe('Term:3 Vote:2 Commit:9');
  });

  test('messages: rejections, snapshot chunks and their acknowledgements, contexts', () => {
    expect(describeMessage(message({ type: MessageType.AppResp, from: 2, to: 1, term: 4, index: 9, logTerm: 3, reject: true, rejectHint: 5 }))).toBe(
      '2->1 MsgAppResp Term:4 Log:3/9 Rejected (Hint: 5)',
    );
    const metadata = { index: 10, term: 2, voters: [1, 2, 3], learners: [] };
    expect(
      describeMessage(
        message({ type: MessageType.Snap, from: 1, to: 3, term: 2, snapshot: { metadata, offset: 4, totalBytes: 6, data: data('ab'), done: true } }),
      ),
    ).toBe('1->3 MsgSnap Term:2 Log:0/0 Snapshot:[Index:10 Term:2 Voters:(1 2 3) Bytes:4+2/6 Done]');
    expect(describeMessage(message({ type: MessageType.SnapResp, from: 3, to: 1, term: 2, index: 10, logTerm: 2, rejectHint: 6 }))).toBe(
      '3->1 MsgSnapResp Term:2 Log:2/10 Received:6',
    );
    expect(describeMessage(message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 3, context: data('1:7') }))).toBe(
      '1->2 MsgHeartbeat Term:2 Log:0/0 Commit:3 Context:"1:7"',
    );
  });

  test('a Ready lists only what it carries, in the order it is handled', () => {
    expect(
      describeReady({
        softState: { leader: 1, role: StateRole.Leader },
        hardState: { term: 1, vote: 1, commit: 1 },
        entries: [{ term: 1, index: 2, type: EntryType.Normal, data: data('a') }],
        committedEntries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }],
        messages: [message({ type: MessageType.App, from: 1, to: 2, term: 1, index: 1, logTerm: 1, commit: 1 })],
        readStates: [{ index: 1, context: data('r1') }],
        mustSync: true,
      }).split('\n'),
    ).toEqual([
      'Ready MustSync=true:',
      'Lead:1 State:StateLeader',
      'HardState Term:1 Vote:1 Commit:1',
      'Entries:',
      '1/2 EntryNormal "a"',
      'CommittedEntries:',
      '1/1 EntryNormal ""',
      'Messages:',
      '1->2 MsgApp Term:1 Log:1/1 Commit:1',
      'ReadStates:',
      'Index:1 Context:"r1"',
    ]);
    expect(describeReady({ entries: [], committedEntries: [], messages: [], readStates: [], mustSync: false })).toBe('Ready MustSync=false:');
  });
});
