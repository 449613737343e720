/**
 * Versions a member reports. etcd's clients read `etcdserver` as a plain numeric etcd version
 * (Patroni parses each dot-separated part as an integer and waits forever on anything else),
 * so qkv answers the etcd release whose API it serves and is compared against in its test
 * suite, and its own version beside it.
 */
/** The etcd server version qkv answers as (GET /version, Maintenance.Status, etcdctl endpoint status). */
export const ETCD_SERVER_VERSION = '3.4.23';
/** The cluster version etcd 3.4 reports: major.minor.0. */
export const ETCD_CLUSTER_VERSION = '3.4.0';
/** qkv's own version (package.json's; test/version.test.ts keeps the two in step). */
export const QKV_VERSION = '0.1.0';
