import { resolve } from 'node:path';
import { nodeFileSystem, writeFileAtomic } from '../../index.js';
import { type Context, openStore, type StoreFlags } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { toCsv } from '../format/csv.js';
import { toPrometheus } from '../format/prometheus.js';
import { type RecordKind, recordsOf } from '../format/records.js';

export interface ExportFlags extends StoreFlags {
  format: 'json' | 'ndjson' | 'csv' | 'prometheus';
  what: RecordKind;
  /** `--what` was given on the command line (not the default). */
  whatGiven: boolean;
  out?: string;
  mode: number;
}

function render(flags: ExportFlags, records: Record<string, unknown>[]): string {
  switch (flags.format) {
    case 'json':
      return `${JSON.stringify(records, null, 2)}\n`;
    case 'ndjson':
      return records.map((record) => `${JSON.stringify(record)}\n`).join('');
    default:
      return toCsv(records, flags.what);
  }
}

export async function runExport(context: Context, flags: ExportFlags): Promise<number> {
  if (flags.format === 'prometheus' && flags.whatGiven) {
    throw new UsageError(
      '--what cannot be used with --format prometheus, which exports the totals and every agent',
    );
  }
  const state = await openStore(context, flags).load();
  const records = recordsOf(state, flags.what);
  const text = flags.format === 'prometheus' ? toPrometheus(state) : render(flags, records);
  if (flags.out === undefined) {
    context.io.stdout.write(text);
    return EXIT.ok;
  }
  // Atomic and durable, so a textfile collector or a reader never sees half a file.
  const target = resolve(context.io.cwd, flags.out);
  await writeFileAtomic(nodeFileSystem, target, Buffer.from(text), {
    fileMode: flags.mode,
    durability: 'fsync',
  });
  const what = flags.format === 'prometheus' ? 'metrics' : `${records.length} ${flags.what}`;
  context.out.line(`wrote ${what} (${flags.format}) to ${target}`);
  return EXIT.ok;
}
