/**
 * Schemas of etcd v3's messages for the JSON gateway codec: field names and types exactly as
 * in etcd 3.4's rpc.proto / kv.proto (see etcd's Documentation/dev-guide/apispec).
 */
import { field, type Schema } from './codec.js';

const SORT_ORDER = ['NONE', 'ASCEND', 'DESCEND'] as const;
const SORT_TARGET = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;
const COMPARE_RESULT = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const COMPARE_TARGET = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;
const EVENT_TYPE = ['PUT', 'DELETE'] as const;
const FILTER_TYPE = ['NOPUT', 'NODELETE'] as const;

export const ResponseHeader: Schema = {
  type: 'etcdserverpb.ResponseHeader',
  fields: [field.uint64('clusterId'), field.uint64('memberId'), field.int64('revision'), field.int64('raftTerm')],
};

export const KeyValue: Schema = {
  type: 'mvccpb.KeyValue',
  fields: [field.bytes('key'), field.int64('createRevision'), field.int64('modRevision'), field.int64('version'), field.bytes('value'), field.int64('lease')],
};

export const Event: Schema = {
  type: 'mvccpb.Event',
  fields: [field.enum('type', EVENT_TYPE, 'type', 'mvccpb.Event_EventType'), field.message('kv', () => KeyValue), field.message('prevKv', () => KeyValue)],
};

const header = field.message('header', () => ResponseHeader);

export const RangeRequest: Schema = {
  type: 'etcdserverpb.RangeRequest',
  fields: [
    field.bytes('key'),
    field.bytes('rangeEnd'),
    field.int64('limit'),
    field.int64('revision'),
    field.enum('sortOrder', SORT_ORDER),
    field.enum('sortTarget', SORT_TARGET),
    field.bool('serializable'),
    field.bool('keysOnly'),
    field.bool('countOnly'),
    field.int64('minModRevision'),
    field.int64('maxModRevision'),
    field.int64('minCreateRevision'),
    field.int64('maxCreateRevision'),
  ],
};

export const RangeResponse: Schema = {
  type: 'etcdserverpb.RangeResponse',
  fields: [header, field.list('kvs', { message: () => KeyValue }), field.bool('more'), field.int64('count')],
};

export const PutRequest: Schema = {
  type: 'etcdserverpb.PutRequest',
  fields: [field.bytes('key'), field.bytes('value'), field.int64('lease'), field.bool('prevKv'), field.bool('ignoreValue'), field.bool('ignoreLease')],
};

export const PutResponse: Schema = {
  type: 'etcdserverpb.PutResponse',
  fields: [header, field.message('prevKv', () => KeyValue)],
};

export const DeleteRangeRequest: Schema = {
  type: 'etcdserverpb.DeleteRangeRequest',
  fields: [field.bytes('key'), field.bytes('rangeEnd'), field.bool('prevKv')],
};

export const DeleteRangeResponse: Schema = {
  type: 'etcdserverpb.DeleteRangeResponse',
  fields: [header, field.int64('deleted'), field.list('prevKvs', { message: () => KeyValue })],
};

export const Compare: Schema = {
  type: 'etcdserverpb.Compare',
  fields: [
    field.enum('result', COMPARE_RESULT, 'result', 'etcdserverpb.Compare_CompareResult'),
    field.enum('target', COMPARE_TARGET, 'target', 'etcdserverpb.Compare_CompareTarget'),
    field.bytes('key'),
    field.int64('version'),
    field.int64('createRevision'),
    field.int64('modRevision'),
    field.bytes('value'),
    field.int64('lease'),
    { ...field.bytes('rangeEnd'), highNumber: 64 },
  ],
};

export const RequestOp: Schema = {
  type: 'etcdserverpb.RequestOp',
  fields: [
    field.message('requestRange', () => RangeRequest),
    field.message('requestPut', () => PutRequest),
    field.message('requestDeleteRange', () => DeleteRangeRequest),
    field.message('requestTxn', () => TxnRequest),
  ],
};

export const ResponseOp: Schema = {
  type: 'etcdserverpb.ResponseOp',
  fields: [
    field.message('responseRange', () => RangeResponse),
    field.message('responsePut', () => PutResponse),
    field.message('responseDeleteRange', () => DeleteRangeResponse),
    field.message('responseTxn', () => TxnResponse),
  ],
};

export const TxnRequest: Schema = {
  type: 'etcdserverpb.TxnRequest',
  fields: [
    field.list('compare', { message: () => Compare }),
    field.list('success', { message: () => RequestOp }),
    field.list('failure', { message: () => RequestOp }),
  ],
};

export const TxnResponse: Schema = {
  type: 'etcdserverpb.TxnResponse',
  fields: [header, field.bool('succeeded'), field.list('responses', { message: () => ResponseOp })],
};

export const CompactionRequest: Schema = {
  type: 'etcdserverpb.CompactionRequest',
  fields: [field.int64('revision'), field.bool('physical')],
};

export const HeaderOnlyResponse: Schema = { type: 'etcdserverpb.Response', fields: [header] };

export const LeaseGrantRequest: Schema = {
  type: 'etcdserverpb.LeaseGrantRequest',
  fields: [field.int64('ttl', 'TTL'), field.int64('id', 'ID')],
};

export const LeaseGrantResponse: Schema = {
  type: 'etcdserverpb.LeaseGrantResponse',
  fields: [header, field.int64('id', 'ID'), field.int64('ttl', 'TTL'), field.string('error')],
};

export const LeaseIdRequest: Schema = { type: 'etcdserverpb.LeaseRevokeRequest', fields: [field.int64('id', 'ID')] };

export const LeaseKeepAliveResponse: Schema = {
  type: 'etcdserverpb.LeaseKeepAliveResponse',
  fields: [header, field.int64('id', 'ID'), field.int64('ttl', 'TTL')],
};

export const LeaseTimeToLiveRequest: Schema = {
  type: 'etcdserverpb.LeaseTimeToLiveRequest',
  fields: [field.int64('id', 'ID'), field.bool('keys')],
};

export const LeaseTimeToLiveResponse: Schema = {
  type: 'etcdserverpb.LeaseTimeToLiveResponse',
  fields: [header, field.int64('id', 'ID'), field.int64('ttl', 'TTL'), field.int64('grantedTtl', 'grantedTTL'), field.list('keys', 'bytes')],
};

export const LeaseStatus: Schema = { type: 'etcdserverpb.LeaseStatus', fields: [field.int64('id', 'ID')] };

export const LeaseLeasesResponse: Schema = {
  type: 'etcdserverpb.LeaseLeasesResponse',
  fields: [header, field.list('leases', { message: () => LeaseStatus })],
};

export const WatchCreateRequest: Schema = {
  type: 'etcdserverpb.WatchCreateRequest',
  fields: [
    field.bytes('key'),
    field.bytes('rangeEnd'),
    field.int64('startRevision'),
    field.bool('progressNotify'),
    field.list('filters', { enum: FILTER_TYPE, goType: 'etcdserverpb.WatchCreateRequest_FilterType' }),
    field.bool('prevKv'),
    field.int64('watchId'),
    field.bool('fragment'),
  ],
};

export const WatchRequest: Schema = {
  type: 'etcdserverpb.WatchRequest',
  fields: [
    field.message('createRequest', () => WatchCreateRequest),
    field.message('cancelRequest', () => ({ type: 'etcdserverpb.WatchCancelRequest', fields: [field.int64('watchId')] })),
    field.message('progressRequest', () => ({ type: 'etcdserverpb.WatchProgressRequest', fields: [] })),
  ],
};

export const WatchResponse: Schema = {
  type: 'etcdserverpb.WatchResponse',
  fields: [
    header,
    field.int64('watchId'),
    field.bool('created'),
    field.bool('canceled'),
    field.int64('compactRevision'),
    field.string('cancelReason'),
    field.bool('fragment'),
    field.list('events', { message: () => Event }),
  ],
};

export const Member: Schema = {
  type: 'etcdserverpb.Member',
  fields: [
    field.uint64('id', 'ID'),
    field.string('name'),
    field.list('peerUrls', 'string', 'peerURLs'),
    field.list('clientUrls', 'string', 'clientURLs'),
    field.bool('isLearner', 'isLearner'),
  ],
};

export const MemberListResponse: Schema = {
  type: 'etcdserverpb.MemberListResponse',
  fields: [header, field.list('members', { message: () => Member })],
};

export const MemberAddRequest: Schema = {
  type: 'etcdserverpb.MemberAddRequest',
  fields: [field.list('peerUrls', 'string', 'peerURLs'), field.bool('isLearner', 'isLearner')],
};

export const MemberAddResponse: Schema = {
  type: 'etcdserverpb.MemberAddResponse',
  fields: [header, field.message('member', () => Member), field.list('members', { message: () => Member })],
};

export const MemberRemoveRequest: Schema = { type: 'etcdserverpb.MemberRemoveRequest', fields: [field.uint64('id', 'ID')] };

export const MemberRemoveResponse: Schema = {
  type: 'etcdserverpb.MemberRemoveResponse',
  fields: [header, field.list('members', { message: () => Member })],
};

export const MemberUpdateRequest: Schema = {
  type: 'etcdserverpb.MemberUpdateRequest',
  fields: [field.uint64('id', 'ID'), field.list('peerUrls', 'string', 'peerURLs')],
};

export const MemberUpdateResponse: Schema = {
  type: 'etcdserverpb.MemberUpdateResponse',
  fields: [header, field.list('members', { message: () => Member })],
};

export const MemberPromoteRequest: Schema = { type: 'etcdserverpb.MemberPromoteRequest', fields: [field.uint64('id', 'ID')] };

export const MemberPromoteResponse: Schema = {
  type: 'etcdserverpb.MemberPromoteResponse',
  fields: [header, field.list('members', { message: () => Member })],
};

export const StatusResponse: Schema = {
  type: 'etcdserverpb.StatusResponse',
  fields: [
    header,
    field.string('version'),
    field.int64('dbSize', 'dbSize'),
    field.uint64('leader'),
    field.int64('raftIndex', 'raftIndex'),
    field.int64('raftTerm', 'raftTerm'),
    field.int64('raftAppliedIndex', 'raftAppliedIndex'),
    field.list('errors', 'string'),
    field.int64('dbSizeInUse', 'dbSizeInUse'),
    field.bool('isLearner', 'isLearner'),
  ],
};

export const HashKVRequest: Schema = { type: 'etcdserverpb.HashKVRequest', fields: [field.int64('revision')] };

export const HashKVResponse: Schema = {
  type: 'etcdserverpb.HashKVResponse',
  fields: [header, field.uint32('hash'), field.int64('compactRevision')],
};

// ---- etcd's concurrency services: v3lockpb (Lock) and v3electionpb (Election) --------------

export const LockRequest: Schema = { type: 'v3lockpb.LockRequest', fields: [field.bytes('name'), field.int64('lease')] };

export const LockResponse: Schema = { type: 'v3lockpb.LockResponse', fields: [header, field.bytes('key')] };

export const UnlockRequest: Schema = { type: 'v3lockpb.UnlockRequest', fields: [field.bytes('key')] };

export const LeaderKey: Schema = {
  type: 'v3electionpb.LeaderKey',
  fields: [field.bytes('name'), field.bytes('key'), field.int64('rev'), field.int64('lease')],
};

export const CampaignRequest: Schema = {
  type: 'v3electionpb.CampaignRequest',
  fields: [field.bytes('name'), field.int64('lease'), field.bytes('value')],
};

export const CampaignResponse: Schema = {
  type: 'v3electionpb.CampaignResponse',
  fields: [header, field.message('leader', () => LeaderKey)],
};

export const ProclaimRequest: Schema = {
  type: 'v3electionpb.ProclaimRequest',
  fields: [field.message('leader', () => LeaderKey), field.bytes('value')],
};

export const LeaderRequest: Schema = { type: 'v3electionpb.LeaderRequest', fields: [field.bytes('name')] };

export const LeaderResponse: Schema = {
  type: 'v3electionpb.LeaderResponse',
  fields: [header, field.message('kv', () => KeyValue)],
};

export const ResignRequest: Schema = { type: 'v3electionpb.ResignRequest', fields: [field.message('leader', () => LeaderKey)] };

export const HashResponse: Schema = { type: 'etcdserverpb.HashResponse', fields: [header, field.uint32('hash')] };

const ALARM_ACTION = ['GET', 'ACTIVATE', 'DEACTIVATE'] as const;
const ALARM_TYPE = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

export const AlarmRequest: Schema = {
  type: 'etcdserverpb.AlarmRequest',
  fields: [
    field.enum('action', ALARM_ACTION, 'action', 'etcdserverpb.AlarmRequest_AlarmAction'),
    field.uint64('memberId', 'memberID'),
    field.enum('alarm', ALARM_TYPE, 'alarm', 'etcdserverpb.AlarmType'),
  ],
};

export const AlarmMember: Schema = {
  type: 'etcdserverpb.AlarmMember',
  fields: [field.uint64('memberId', 'memberID'), field.enum('alarm', ALARM_TYPE, 'alarm', 'etcdserverpb.AlarmType')],
};

export const AlarmResponse: Schema = {
  type: 'etcdserverpb.AlarmResponse',
  fields: [header, field.list('alarms', { message: () => AlarmMember })],
};

export const SnapshotResponse: Schema = {
  type: 'etcdserverpb.SnapshotResponse',
  fields: [header, field.uint64('remainingBytes'), field.bytes('blob')],
};

// ---- Auth (etcdserverpb's Auth* messages, authpb's Permission and UserAddOptions)

const PERMISSION_TYPE = ['READ', 'WRITE', 'READWRITE'] as const;

export const Permission: Schema = {
  type: 'authpb.Permission',
  fields: [field.enum('permType', PERMISSION_TYPE, 'permType', 'authpb.Permission_Type'), field.bytes('key'), field.bytes('rangeEnd')],
};

const UserAddOptions: Schema = { type: 'authpb.UserAddOptions', fields: [field.bool('noPassword')] };

const authMessage = (name: string, ...fields: Schema['fields']): Schema => ({ type: `etcdserverpb.${name}`, fields });
const authResponse = (name: string, ...fields: Schema['fields']): Schema => authMessage(name, header, ...fields);

export const AuthenticateRequest = authMessage('AuthenticateRequest', field.string('name'), field.string('password'));
export const AuthenticateResponse = authResponse('AuthenticateResponse', field.string('token'));
export const AuthUserAddRequest = authMessage(
  'AuthUserAddRequest',
  field.string('name'),
  field.string('password'),
  field.message('options', () => UserAddOptions),
);
export const AuthUserNameRequest = authMessage('AuthUserGetRequest', field.string('name'));
export const AuthUserChangePasswordRequest = authMessage('AuthUserChangePasswordRequest', field.string('name'), field.string('password'));
export const AuthUserGrantRoleRequest = authMessage('AuthUserGrantRoleRequest', field.string('user'), field.string('role'));
export const AuthUserRevokeRoleRequest = authMessage('AuthUserRevokeRoleRequest', field.string('name'), field.string('role'));
export const AuthRoleAddRequest = authMessage('AuthRoleAddRequest', field.string('name'));
export const AuthRoleNameRequest = authMessage('AuthRoleGetRequest', field.string('role'));
export const AuthRoleGrantPermissionRequest = authMessage(
  'AuthRoleGrantPermissionRequest',
  field.string('name'),
  field.message('perm', () => Permission),
);
export const AuthRoleRevokePermissionRequest = authMessage(
  'AuthRoleRevokePermissionRequest',
  field.string('role'),
  field.bytes('key'),
  field.bytes('rangeEnd'),
);
export const AuthUserGetResponse = authResponse('AuthUserGetResponse', field.list('roles', 'string'));
export const AuthRoleGetResponse = authResponse('AuthRoleGetResponse', field.list('perm', { message: () => Permission }));
export const AuthRoleListResponse = authResponse('AuthRoleListResponse', field.list('roles', 'string'));
export const AuthUserListResponse = authResponse('AuthUserListResponse', field.list('users', 'string'));

/** A request without fields (etcd's AuthEnableRequest, AuthUserListRequest, StatusRequest...). */
export const Empty: Schema = { type: 'etcdserverpb.Empty', fields: [] };
