import { stat } from 'node:fs/promises';
import { MetricsError } from '../../errors.js';
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
  // A folder (or a device) where a file belongs: its size is not a file's.
  const [metricsFileKind, backupFileKind] = await Promise.all([
    kindOf(files.mainPath),
    kindOf(files.backupPath),
  ]);
  const { out } = context;
  // After the figures are printed: a monitor sees the exit code, a person both.
  const done = () => {
    if (stats.readError !== undefined) throw new MetricsError('E_IO', stats.readError);
    return EXIT.ok;
  };
  if (flags.json) {
    out.json({
      dir: files.dir,
      ...stats,
      metricsFileKind: metricsFileKind ?? null,
      backupFileKind: backupFileKind ?? null,
      quarantinedFiles: files.quarantined,
      tempFiles: files.temp,
    });
    return done();
  }
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  const size = (exists: boolean, bytes: number, kind: string | undefined) => {
    if (kind === 'folder') return 'a folder, not a file';
    if (kind === 'other') return 'not a regular file';
    return exists ? `${formatCount(bytes)} bytes` : 'missing';
  };
  const unknown = stats.readError === undefined ? undefined : 'cannot tell (unreadable)';
  out.heading(`Storage of ${files.dir}`);
  out.table({
    head: ['item', 'value'],
    rows: [
      ['main file', size(stats.metricsFileExists, stats.metricsFileSizeBytes, metricsFileKind)],
      ['main file valid', !stats.metricsFileExists ? '-' : (unknown ?? yesNo(stats.metricsFileValid))],
      ['backup file', size(stats.backupFileExists, stats.backupFileSizeBytes, backupFileKind)],
      ['events', unknown ?? formatCount(stats.eventCount)],
      ['sessions', unknown ?? formatCount(stats.sessionCount)],
      ['agents', unknown ?? formatCount(stats.agentCount)],
      ...(stats.countsOfMainFileAlone
        ? [['journal', 'not read (it needs a repair, or was changing): the counts are the main file alone']]
        : []),
      ['quarantined files', String(files.quarantined.length)],
      ['temp files', String(files.temp.length)],
    ],
  });
  for (const path of files.quarantined) out.line(`quarantined: ${path}`);
  return done();
}

/** What is at `path`, links followed; undefined when it cannot tell (a folder it cannot enter, …). */
async function kindOf(path: string): Promise<'file' | 'folder' | 'other' | 'missing' | undefined> {
  try {
    const found = await stat(path);
    return found.isFile() ? 'file' : found.isDirectory() ? 'folder' : 'other';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : undefined;
  }
}
