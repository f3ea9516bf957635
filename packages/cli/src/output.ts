import { Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { table, type Cell } from './table.js';

/**
 * How every command prints: `-o table|wide|json|yaml` (`--json` is `-o json`), `--no-headers`.
 * Commands hand over the answer and, for people, either its rows and columns or a sentence;
 * json and yaml print the answer itself, so scripts see the API's fields and not a rendering.
 */

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface OutputOptions {
  output?: OutputFormat;
  json?: boolean;
  /** false with `--no-headers`. */
  headers?: boolean;
}

/** The program's output options. */
export function outputOptions(): Option[] {
  return [
    new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS),
    new Option('--json', 'the same as -o json (errors then are {"error":{"code","message"}} on stderr)'),
    new Option('--no-headers', 'tables without their header line (for scripts)'),
  ];
}

export function formatOf(o: OutputOptions): OutputFormat {
  return o.json ? 'json' : (o.output ?? 'table');
}

/**
 * Whether JSON was asked for, read from the raw arguments: known before parsing, so that even a
 * usage error is reported in the form asked for.
 */
export function jsonRequested(argv: readonly string[]): boolean {
  const args = argv.slice(2, argv.includes('--') ? argv.indexOf('--') : undefined);
  return args.some((a, k) => a === '--json' || a === '-ojson' || a === '--output=json' || ((a === '-o' || a === '--output') && args[k + 1] === 'json'));
}

/** A column of a list: `wide` ones show with `-o wide` only. */
export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  wide?: boolean;
}

/** The answer in a structured format, or undefined when a person's rendering was asked for. */
function structured(format: OutputFormat, data: unknown): string | undefined {
  switch (format) {
    case 'json':
      return JSON.stringify(data, null, 2) + '\n';
    case 'yaml':
      return toYaml(data);
    case 'table':
    case 'wide':
      return undefined;
  }
}

/** Prints `data`; for people, what `human` makes of it (bytes for a value that is not text). */
export function print(o: OutputOptions, data: unknown, human: () => string | Uint8Array): void {
  process.stdout.write(structured(formatOf(o), data) ?? human());
}

/** Renders rows for people in the chosen width, with or without headers. */
export function renderRows<T>(o: OutputOptions, rows: readonly T[], columns: readonly Column<T>[]): string {
  const wide = formatOf(o) === 'wide';
  const shown = columns.filter((c) => wide || !c.wide);
  return table(
    shown.map((c) => c.header),
    rows.map((r) => shown.map((c) => c.value(r))),
    { headers: o.headers !== false },
  );
}

/** Prints a list: `data` for json and yaml, `rows` as a table otherwise (`empty` when there are none). */
export function printList<T>(o: OutputOptions, data: unknown, rows: readonly T[], columns: readonly Column<T>[], empty: string): void {
  print(o, data, () => (rows.length ? renderRows(o, rows, columns) : empty));
}

/** One item of a stream (`watch`, `events --follow`): a JSON line, a YAML document, or a person's line. */
export function printStreamItem(o: OutputOptions, data: unknown, human: () => string): void {
  switch (formatOf(o)) {
    case 'json':
      process.stdout.write(JSON.stringify(data) + '\n');
      return;
    case 'yaml':
      process.stdout.write('---\n' + toYaml(data));
      return;
    case 'table':
    case 'wide':
      process.stdout.write(human());
      return;
  }
}
