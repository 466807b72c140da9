import { lstat } from 'node:fs/promises';
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
  // A folder (or a device) where a file belongs: its size would read as the file's.
  const kinds = await Promise.all([files.mainPath, files.backupPath].map(notAFile));
  const size = (exists: boolean, bytes: number, kind: string | undefined) =>
    kind ?? (exists ? `${formatCount(bytes)} bytes` : 'missing');
  out.heading(`Storage of ${files.dir}`);
  out.table({
    head: ['item', 'value'],
    rows: [
      ['main file', size(stats.metricsFileExists, stats.metricsFileSizeBytes, kinds[0])],
      ['main file valid', stats.metricsFileExists ? yesNo(stats.metricsFileValid) : '-'],
      ['backup file', size(stats.backupFileExists, stats.backupFileSizeBytes, kinds[1])],
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

/** 'a folder, not a file' (or the like) when something other than a file (or a link to one) is at `path`. */
async function notAFile(path: string): Promise<string | undefined> {
  const stat = await lstat(path).catch(() => undefined);
  if (stat === undefined || stat.isFile() || stat.isSymbolicLink()) return undefined;
  return stat.isDirectory() ? 'a folder, not a file' : 'not a regular file';
}
