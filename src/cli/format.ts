/**
 * The text helpers of the CLI's output live in the printers that use them (`printer/`); the
 * two re-exported here keep this module's old import path working (test/cli/txn_parse.test.ts).
 */
export { humanBytes } from './printer/printer.js';
export { table } from './printer/table.js';
