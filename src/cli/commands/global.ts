/**
 * What every command gets from the program (etcdctl's global.go): the global flags, resolved
 * and validated once, and the client and printer made from them.
 */
import type { Client } from '../../client/client.js';
import type { TlsFiles } from '../../tls.js';
import type { OutputFormat, Printer } from '../printer/index.js';

/** The global flags, resolved: endpoints as URLs, the command timeout in milliseconds. */
export interface GlobalOptions {
  endpoints: string[];
  commandTimeoutMs: number;
  writeOut: OutputFormat;
  hex: boolean;
  /** etcdctl's --cacert, --cert, --key (files), for https:// endpoints. */
  tls: TlsFiles;
  /** --user (and --password): who the client acts as. */
  user?: { name: string; password: string };
}

export interface CliContext {
  /** The global flags, resolved and validated on first use (commands that need none never fail on them). */
  options(): GlobalOptions;
  /** The client over the endpoints, with the command timeout. */
  client(): Client;
  /** The printer selected by -w / --write-out. */
  printer(): Printer;
}
