import { type Context, existingProjectDir, openStore, type StoreFlags } from '../context.js';
import { EXIT } from '../errors.js';
import { listProjectFiles } from '../files.js';
import { formatCount } from '../format/units.js';

export interface StatsFlags extends StoreFlags {
  json?: boolean;
}

/** The store's own statistics plus the leftovers recovery and crashed writers leave in the folder. */
export async function runStats(context: Context, flags: StatsFlags): Promise<number> {
  const dir = await existingProjectDir(context, flags);
  const stats = await openStore(context, flags).getStats();
  const files = await listProjectFiles(dir);
  const { out } = context;
  if (flags.json) {
    out.json({ dir: files.dir, ...stats, quarantinedFiles: files.quarantined, tempFiles: files.temp });
    return EXIT.ok;
  }
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  const size = (exists: boolean, bytes: number) => (exists ? `${formatCount(bytes)} bytes` : 'missing');
  out.heading(`Storage of ${files.dir}`);
  out.table({
    head: ['item', 'value'],
    rows: [
      ['main file', size(stats.metricsFileExists, stats.metricsFileSizeBytes)],
      ['main file valid', stats.metricsFileExists ? yesNo(stats.metricsFileValid) : '-'],
      ['backup file', size(stats.backupFileExists, stats.backupFileSizeBytes)],
      ['events', formatCount(stats.eventCount)],
      ['sessions', formatCount(stats.sessionCount)],
      ['agents', formatCount(stats.agentCount)],
      ['quarantined files', String(files.quarantined.length)],
      ['temp files', String(files.temp.length)],
    ],
  });
  for (const path of files.quarantined) out.line(`quarantined: ${path}`);
  return EXIT.ok;
}
