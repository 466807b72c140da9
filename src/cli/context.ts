import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import {
  AgentMetrics,
  type DashboardState,
  type Durability,
  JOURNAL_BACKUP_FILE,
  MemoryBackend,
  MetricsStore,
  type RecoveryReport,
  StorageIOError,
} from '../index.js';
import { describeError, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { Output } from './output.js';

/** Options every command that opens the project takes (see `addStoreOptions`). */
export interface StoreFlags {
  dir: string;
  project?: string;
  lockTimeout: number;
  /** Not a flag: `demo` writes throwaway data to a fresh folder and skips the fsyncs. @default the store's */
  durability?: Durability;
}

/** What a command needs to run: the io and an `Output` bound to it. */
export interface Context {
  io: CliIo;
  out: Output;
  /** Stores this command wrote to: `main` closes them at the end (see `closeWriters`). */
  writers: MetricsStore[];
}

export function createContext(io: CliIo): Context {
  return { io, out: new Output(io), writers: [] };
}

/**
 * Closes every store the command wrote to; with `checkpoint` (the command succeeded), first folds
 * its journal into `.agent_metrics.json`, so that the JSON file is current when a command returns
 * (hooks run one short process per event, which would never reach an idle checkpoint). A failed
 * checkpoint is a warning: what was recorded is durable in the journal already and will be folded
 * by the next writer.
 */
export async function closeWriters(context: Context, checkpoint: boolean): Promise<void> {
  for (const store of context.writers.splice(0)) {
    await store.close({ checkpoint }).catch((error: unknown) => {
      context.out.warn(
        `could not update ${store.metricsPath} (the journal holds everything): ${describeError(error).replace(/^error /, '')}`,
      );
    });
  }
}

/** `--dir`, resolved against the io's working folder. */
export function projectDir(context: Context, flags: StoreFlags): string {
  return resolve(context.io.cwd, flags.dir);
}

/**
 * `--dir` of a command that only reads or checks (`show`, `stats`, `verify`, `repair`, `export`):
 * a folder that does not exist is a mistake (a typo, an unset variable), not an empty project.
 * (Commands that record create it.)
 */
export async function existingProjectDir(context: Context, flags: StoreFlags): Promise<string> {
  const dir = projectDir(context, flags);
  const found = await statOfDir(dir);
  if (typeof found === 'string') throw new UsageError(`--dir: there is no folder ${dir}`);
  if (!found.isDirectory()) throw new UsageError(`--dir: ${dir} is a file, not a folder`);
  return dir;
}

/**
 * `--dir` of a command that records (`record`, `session`, `demo`): created when missing, but a
 * file there is a mistake, exit 2, not a storage failure (exit 3), which a hook may retry forever.
 */
export async function recordingProjectDir(context: Context, flags: StoreFlags): Promise<string> {
  const dir = projectDir(context, flags);
  const found = await statOfDir(dir);
  if (found === 'below-a-file') throw new UsageError(`--dir: ${dir} is not a folder: a file is on its path`);
  if (found === 'missing') await assertNoDanglingLink(dir);
  else if (!found.isDirectory()) throw new UsageError(`--dir: ${dir} is a file, not a folder`);
  return dir;
}

/** What is at `--dir`; a loop of links is a usage error, any other failure to look E_IO (exit 3). */
async function statOfDir(dir: string): Promise<Stats | 'missing' | 'below-a-file'> {
  try {
    return await stat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') return 'below-a-file';
    if (code === 'ELOOP') throw new UsageError(`--dir: ${dir} is a loop of symbolic links`);
    throw new StorageIOError('stat', dir, error);
  }
}

/**
 * A missing `dir` whose nearest existing part of the path is a link to nowhere: mkdir would fail
 * (ENOENT) at every retry, a mistake in the path (exit 2), not a storage failure.
 */
async function assertNoDanglingLink(dir: string): Promise<void> {
  for (let at = dir; ; at = dirname(at)) {
    const own = await lstat(at).catch(() => undefined);
    if (own !== undefined) {
      if (own.isSymbolicLink() && (await stat(at).catch(() => undefined)) === undefined) {
        const where = at === dir ? dir : `${dir}: ${at}`;
        throw new UsageError(`--dir: ${where} is a symbolic link to a folder that does not exist`);
      }
      return;
    }
    if (dirname(at) === at) return;
  }
}

export function describeRecovery(report: RecoveryReport): string {
  const parts = [`${report.action}: ${report.reason}`];
  // What was kept aside: the journal itself when set aside, else a copy of it.
  const kept =
    report.action === 'journal-set-aside'
      ? 'journal'
      : report.action.startsWith('journal-')
        ? 'copy of the journal'
        : 'corrupt main file';
  if (report.quarantinedPath) parts.push(`${kept} kept as ${report.quarantinedPath}`);
  if (report.backupReason) parts.push(`backup not used: ${report.backupReason}`);
  const keptBackup =
    report.action === 'journal-replayed-from-backup' ? `copy of ${JOURNAL_BACKUP_FILE}` : 'corrupt backup';
  if (report.quarantinedBackupPath) parts.push(`${keptBackup} kept as ${report.quarantinedBackupPath}`);
  return parts.join('; ');
}

/**
 * The project's store. The project name only matters when the store is created: by default the
 * folder's name. A recovery that happens while loading is reported on stderr (stdout stays
 * clean for `--json`), unless the caller listens itself (`repair`).
 */
export function openStore(
  context: Context,
  flags: StoreFlags,
  onRecover: (report: RecoveryReport) => void = (report) =>
    context.out.warn(`recovered the project: ${describeRecovery(report)}`),
): MetricsStore {
  const dir = projectDir(context, flags);
  return new MetricsStore({
    projectName: flags.project ?? (basename(dir) || 'project'),
    dir,
    lockTimeoutMs: flags.lockTimeout,
    // A blocked flock cannot be cancelled: the command could not end before the holder lets go.
    lockWait: 'poll',
    durability: flags.durability,
    onRecover,
  });
}

/**
 * The domain API on the project's store, strict: a failure to record throws, so the exit code
 * says whether it was recorded (the library default is to report it and carry on).
 */
export async function openMetrics(context: Context, flags: StoreFlags): Promise<AgentMetrics> {
  await recordingProjectDir(context, flags);
  const store = openStore(context, flags);
  context.writers.push(store);
  return new AgentMetrics({ store, strict: true });
}

/**
 * The domain API on a copy of `state` in memory: a command tries its calls there first, so that
 * one that would fail (invalid input, a total that overflows, an unknown session) is an error
 * before anything is written. The copy holds the profiles of `agents` alone, and no events: no
 * such failure depends on the others, and MemoryBackend copies and validates its whole state at
 * every call (`record --json -` with 20 events took 20.3 s at 50,000 events kept, 18.6 s at
 * 10,000 agents).
 */
export function rehearsal(state: DashboardState, agents: readonly unknown[]): AgentMetrics {
  // fromEntries: an agent named `__proto__` stays a key.
  const named = Object.fromEntries(
    agents
      .filter((name): name is string => typeof name === 'string' && Object.hasOwn(state.agents, name))
      .map((name) => [name, state.agents[name]]),
  ) as DashboardState['agents'];
  return new AgentMetrics({
    store: new MemoryBackend({ ...state, events: [], agents: named }),
    strict: true,
  });
}
