import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { nodeFileSystem, writeFileAtomic } from '../../index.js';
import { type Context, existingProjectDir, openStore, type StoreFlags } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { toCsv } from '../format/csv.js';
import { toPrometheus } from '../format/prometheus.js';
import { type RecordKind, recordsOf } from '../format/records.js';

export interface ExportFlags extends StoreFlags {
  format: 'json' | 'ndjson' | 'csv' | 'prometheus';
  what: RecordKind;
  /** `--what` was given on the command line (not the default). */
  whatGiven: boolean;
  /** `--mode` was given on the command line (not the default). */
  modeGiven: boolean;
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

/** The project's own files all start with this: state, backups, journal, lock, kept copies. */
const PROJECT_FILE_PREFIX = '.agent_metrics';

/** `path` with its folder's symbolic links resolved, when that folder exists. */
async function canonical(path: string): Promise<string> {
  const folder = await realpath(dirname(path)).catch(() => dirname(path));
  return join(folder, basename(path));
}

/**
 * Refuses an `--out` that is one of the project's own files, by name or as another name of one (a
 * link): the export would replace the data it was made from, and the copies kept as evidence.
 */
async function assertNotProjectFile(dir: string, target: string): Promise<void> {
  const refuse = (name: string) => {
    throw new UsageError(`--out: ${target} is the project's file ${name}; export to another file`);
  };
  const canonicalTarget = await canonical(target);
  const folder = await realpath(dir).catch(() => dir);
  if (dirname(canonicalTarget) === folder && basename(canonicalTarget).startsWith(PROJECT_FILE_PREFIX)) {
    refuse(basename(canonicalTarget));
  }
  const existing = await stat(target).catch(() => undefined);
  if (existing === undefined) return;
  const names = await readdir(folder).catch(() => []);
  for (const name of names.filter((entry) => entry.startsWith(PROJECT_FILE_PREFIX))) {
    const own = await stat(join(folder, name)).catch(() => undefined);
    if (own?.ino === existing.ino && own.dev === existing.dev) refuse(name);
  }
}

/**
 * Where `--out` is written: the path, or the file a symbolic link there names (a textfile
 * collector's target is often a link; replacing the link would leave its file stale). Refuses what
 * the atomic write would destroy or never reach: a FIFO, a device, a folder, a dangling link.
 */
async function outputPath(target: string): Promise<string> {
  const own = await lstat(target).catch(() => undefined);
  if (own === undefined) return target;
  let path = target;
  if (own.isSymbolicLink()) {
    const named = await realpath(target).catch((error: NodeJS.ErrnoException) => error);
    if (typeof named !== 'string') {
      const what =
        named.code === 'ELOOP' ? 'a loop of symbolic links' : 'a symbolic link to a file that does not exist';
      throw new UsageError(`--out: ${target} is ${what}; export to the file itself`);
    }
    path = named;
  }
  const found = await stat(path);
  if (found.isFile()) return path;
  const named = path === target ? target : `${target} (${path})`;
  if (found.isDirectory()) throw new UsageError(`--out: ${named} is a folder; give the path of a file`);
  const kind = found.isFIFO() ? 'a FIFO' : found.isSocket() ? 'a socket' : 'a device';
  throw new UsageError(
    `--out: ${named} is ${kind}, which export would replace with a file; to write into it, leave out --out and redirect stdout`,
  );
}

export async function runExport(context: Context, flags: ExportFlags): Promise<number> {
  if (flags.format === 'prometheus' && flags.whatGiven) {
    throw new UsageError(
      '--what cannot be used with --format prometheus, which exports the totals and every agent',
    );
  }
  if (flags.modeGiven && flags.out === undefined) {
    throw new UsageError('--mode sets the permissions of the --out file, and no --out was given');
  }
  const dir = await existingProjectDir(context, flags);
  const target = flags.out === undefined ? undefined : await outputPath(resolve(context.io.cwd, flags.out));
  // Before reading: a refused --out writes nothing.
  if (target !== undefined) await assertNotProjectFile(dir, target);
  const state = await openStore(context, flags).load();
  const records = recordsOf(state, flags.what);
  const text = flags.format === 'prometheus' ? toPrometheus(state) : render(flags, records);
  if (target === undefined) {
    context.io.stdout.write(text);
    return EXIT.ok;
  }
  // Atomic and durable, so a textfile collector or a reader never sees half a file.
  await writeFileAtomic(nodeFileSystem, target, Buffer.from(text), {
    fileMode: flags.mode,
    durability: 'fsync',
  });
  const what = flags.format === 'prometheus' ? 'metrics' : `${records.length} ${flags.what}`;
  context.out.line(`wrote ${what} (${flags.format}) to ${target}`);
  return EXIT.ok;
}
