/**
 * Single-server configuration changes: their fixed binary form in an entry's data, and how one
 * changes a configuration. Pure functions: every member applies the same changes in log order
 * and reaches the same configuration.
 *
 * Data: u8 type (ConfChangeType), the node id as a big-endian u64, then the context (the
 * application's bytes, possibly none) to the end.
 */
import { RaftConfigError } from './errors.js';
import { ConfChangeType, type ConfChange, type ConfState, type NodeId } from './types.js';

const CONF_CHANGE_HEADER_BYTES = 9;

const TYPE_NAMES: Record<ConfChangeType, string> = {
  [ConfChangeType.AddNode]: 'AddNode',
  [ConfChangeType.RemoveNode]: 'RemoveNode',
  [ConfChangeType.UpdateNode]: 'UpdateNode',
  [ConfChangeType.AddLearnerNode]: 'AddLearnerNode',
};

export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (TYPE_NAMES[cc.type] === undefined) throw new RaftConfigError(`unknown conf change type ${cc.type}`);
  if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId <= 0) throw new RaftConfigError(`conf change node id ${cc.nodeId} must be a positive integer`);
  const context = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(CONF_CHANGE_HEADER_BYTES + context.byteLength);
  const view = new DataView(out.buffer);
  out[0] = cc.type;
  view.setBigUint64(1, BigInt(cc.nodeId));
  out.set(context, CONF_CHANGE_HEADER_BYTES);
  return out;
}

/** The change `data` holds, or undefined if it is not one (too short, unknown type, id 0 or too large). */
export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  if (data.byteLength < CONF_CHANGE_HEADER_BYTES) return undefined;
  const type = data[0] as ConfChangeType;
  if (TYPE_NAMES[type] === undefined) return undefined;
  const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(1);
  if (id === 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const cc: ConfChange = { type, nodeId: Number(id) };
  if (data.byteLength > CONF_CHANGE_HEADER_BYTES) cc.context = data.subarray(CONF_CHANGE_HEADER_BYTES);
  return cc;
}

/** `AddLearnerNode 4`. */
export function describeConfChange(cc: ConfChange): string {
  return `${TYPE_NAMES[cc.type]} ${cc.nodeId}`;
}

const sorted = (ids: Iterable<NodeId>): NodeId[] => [...new Set(ids)].sort((a, b) => a - b);

/**
 * Why `cc` cannot be applied to `cs`, or undefined if it can: removing the last voter, and
 * making a voter a learner (demotion is not supported), are refused.
 */
export function confChangeProblem(cs: ConfState, cc: ConfChange): string | undefined {
  if (cc.type === ConfChangeType.RemoveNode && cs.voters.length === 1 && cs.voters[0] === cc.nodeId) return 'cannot remove the last voter';
  if (cc.type === ConfChangeType.AddLearnerNode && cs.voters.includes(cc.nodeId)) return `node ${cc.nodeId} is a voter: demotion is not supported`;
  return undefined;
}

/** The configuration after `cc`; a change confChangeProblem refuses leaves it as it is. */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  if (confChangeProblem(cs, cc) !== undefined) return { voters: [...cs.voters], learners: [...cs.learners] };
  const id = cc.nodeId;
  if (cc.type === ConfChangeType.UpdateNode) return { voters: [...cs.voters], learners: [...cs.learners] };
  const voters = cs.voters.filter((v) => v !== id);
  const learners = cs.learners.filter((l) => l !== id);
  if (cc.type === ConfChangeType.AddNode) voters.push(id);
  else if (cc.type === ConfChangeType.AddLearnerNode) learners.push(id);
  return { voters: sorted(voters), learners: sorted(learners) };
}
