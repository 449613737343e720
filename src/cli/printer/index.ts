/** The printer of each output format (-w). */
import type { OutputFormat, Output, Printer } from './printer.js';
import { JsonPrinter } from './json.js';
import { SimplePrinter } from './simple.js';
import { TablePrinter } from './table.js';

export type { OutputFormat, Output, Printer } from './printer.js';

const PRINTERS: Record<OutputFormat, new (output: Output, hex?: boolean) => Printer> = {
  simple: SimplePrinter,
  json: JsonPrinter,
  table: TablePrinter,
};

export const OUTPUT_FORMATS = Object.keys(PRINTERS) as OutputFormat[];

/** The printer for `format`, writing to `output`; `hex`: byte strings as hexadecimal. */
export function newPrinter(format: OutputFormat, output: Output, hex = false): Printer {
  return new PRINTERS[format](output, hex);
}
