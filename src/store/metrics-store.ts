import { dirname, join } from 'node:path';
import { errnoCode, MetricsError, StateValidationError, StorageIOError } from '../errors.js';
import { validateState } from '../model/schema.js';
import { applyFifoEviction, capsFor, createEmptyState, RETENTION_KEY, toTimestamp } from '../model/state.js';
import type { DashboardState } from '../model/types.js';
import { callSafely } from '../safe-call.js';
import { sweepTempFiles, tempPathFor, writeFileAtomic } from './atomic-write.js';
import type { MetricsBackend, StateMutator } from './backend.js';
import { type FileStat, fsyncDirectory } from './file-system.js';
import { FileLock } from './lock.js';
import { type MetricsStoreOptions, type ResolvedStoreOptions, resolveStoreOptions } from './options.js';
import { type Generation, identityOf, quarantine, type RecoveryReport, readGeneration } from './recovery.js';

export const METRICS_FILE = '.agent_metrics.json';
export const BACKUP_FILE = '.agent_metrics.json.bak';
export const LOCK_FILE = '.agent_metrics.lock';

/** Storage statistics; never fails, whatever state the files are in. */
export interface StoreStats {
  metricsFileExists: boolean;
  backupFileExists: boolean;
  metricsFileSizeBytes: number;
  backupFileSizeBytes: number;
  /** Counts are read from the main file, and are 0 when it is missing or not valid. */
  eventCount: number;
  sessionCount: number;
  agentCount: number;
  /** False when the main file exists but is corrupt (the next load will recover it). */
  metricsFileValid: boolean;
}

// Errors for which a hard link cannot be made on this file system; the backup is copied instead.
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * The persistence layer: one JSON file per project (`.agent_metrics.json`), its previous
 * generation (`.bak`), and a lock. See design.md §3 for the guarantees it keeps.
 */
export class MetricsStore implements MetricsBackend {
  readonly dir: string;
  readonly metricsPath: string;
  readonly backupPath: string;
  readonly lockPath: string;
  private readonly options: ResolvedStoreOptions;
  private readonly lock: FileLock;
  /** Identity of a main file this instance read or wrote and knows to be valid. */
  private knownValidMain: string | undefined;
  private dirReady = false;

  constructor(options: MetricsStoreOptions) {
    this.options = resolveStoreOptions(options);
    this.dir = this.options.dir;
    this.metricsPath = join(this.dir, METRICS_FILE);
    this.backupPath = join(this.dir, BACKUP_FILE);
    this.lockPath = join(this.dir, LOCK_FILE);
    this.lock = new FileLock(this.options.fileSystem, this.lockPath, {
      timeoutMs: this.options.lockTimeoutMs,
      fileMode: this.options.fileMode,
    });
  }

  get projectName(): string {
    return this.options.projectName;
  }

  /**
   * The current state. Takes no lock when the main file is valid (the common case). A missing
   * main file gives a fresh state; a corrupt one is recovered under the lock (see `onRecover`).
   * Never returns an empty state because a lock was busy: it waits, or throws E_LOCK_TIMEOUT.
   */
  async load(): Promise<DashboardState> {
    const main = await readGeneration(this.options.fileSystem, this.metricsPath);
    if (main.kind === 'valid') {
      this.knownValidMain = identityOf(main.stat);
      return main.state;
    }
    if (main.kind === 'missing' && !(await this.exists(this.backupPath))) return this.freshState();
    await this.ensureDir();
    return this.lock.run(() => this.loadLocked());
  }

  /**
   * Validates `state` (throws `StateValidationError` naming each bad path, writing nothing), sets
   * `updated_at`, applies the FIFO caps, keeps the current main file as `.bak`, and writes the new
   * state atomically and durably. Returns the state as saved; the argument is not modified.
   */
  async save(state: DashboardState): Promise<DashboardState> {
    this.assertValid(state);
    await this.ensureDir();
    return this.lock.run(() => this.saveLocked(state));
  }

  /**
   * Atomic read-modify-write: holds the lock from read to write, so concurrent updates from this
   * and other processes are never lost. `mutate` changes the state in place and may be async; the
   * lock is held while it runs, so keep it short. If it throws, nothing is written and the error
   * propagates. Returns the state as saved.
   */
  async update(mutate: StateMutator): Promise<DashboardState> {
    await this.ensureDir();
    return this.lock.run(async () => {
      const state = await this.loadLocked();
      await mutate(state);
      this.assertValid(state);
      return this.saveLocked(state);
    });
  }

  /** Sizes and counts of the files. Never throws. */
  async getStats(): Promise<StoreStats> {
    const [mainSize, backupSize, main] = await Promise.all([
      this.sizeOf(this.metricsPath),
      this.sizeOf(this.backupPath),
      readGeneration(this.options.fileSystem, this.metricsPath).catch(
        (): Generation => ({ kind: 'invalid', reason: 'unreadable' }),
      ),
    ]);
    const state = main.kind === 'valid' ? main.state : undefined;
    return {
      metricsFileExists: mainSize !== undefined,
      backupFileExists: backupSize !== undefined,
      metricsFileSizeBytes: mainSize ?? 0,
      backupFileSizeBytes: backupSize ?? 0,
      eventCount: state?.events.length ?? 0,
      sessionCount: state?.sessions.length ?? 0,
      agentCount: state ? Object.keys(state.agents).length : 0,
      metricsFileValid: main.kind === 'valid',
    };
  }

  private freshState(): DashboardState {
    return createEmptyState(this.options.projectName);
  }

  private async loadLocked(): Promise<DashboardState> {
    const main = await readGeneration(this.options.fileSystem, this.metricsPath);
    if (main.kind === 'valid') {
      this.knownValidMain = identityOf(main.stat);
      return main.state;
    }
    const report: RecoveryReport =
      main.kind === 'missing'
        ? { action: 'started-fresh', reason: 'main file missing' }
        : {
            action: 'started-fresh',
            reason: main.reason,
            quarantinedPath: await quarantine(this.options.fileSystem, this.metricsPath),
          };
    const backup = await readGeneration(this.options.fileSystem, this.backupPath);
    if (backup.kind === 'valid') {
      // Write the backup's bytes back as they are: nothing in them is lost or reformatted.
      const stat = await writeFileAtomic(
        this.options.fileSystem,
        this.metricsPath,
        backup.data,
        this.options,
      );
      this.knownValidMain = identityOf(stat);
      this.notify({ ...report, action: 'restored-from-backup' });
      return backup.state;
    }
    if (main.kind === 'missing' && backup.kind === 'missing') return this.freshState();
    if (backup.kind === 'invalid') {
      report.backupReason = backup.reason;
      report.quarantinedBackupPath = await quarantine(this.options.fileSystem, this.backupPath);
    } else {
      report.backupReason = 'backup file missing';
    }
    this.notify(report);
    return this.freshState();
  }

  private async saveLocked(state: DashboardState): Promise<DashboardState> {
    const { maxEvents, maxSessions } = this.options;
    const caps = capsFor(state, { maxEvents, maxSessions });
    const stamped: DashboardState = { ...state, updated_at: toTimestamp(new Date()) };
    if (maxEvents !== undefined || maxSessions !== undefined) {
      stamped[RETENTION_KEY] = { max_events: caps.maxEvents, max_sessions: caps.maxSessions };
    }
    const next = applyFifoEviction(stamped, caps);
    const data = this.serialize(next);
    await sweepTempFiles(this.options.fileSystem, this.dir, [this.metricsPath, this.backupPath]);
    await this.backupCurrentMain();
    const stat = await writeFileAtomic(this.options.fileSystem, this.metricsPath, data, this.options);
    this.knownValidMain = identityOf(stat);
    return next;
  }

  /**
   * Makes the current main file the `.bak` by hard-linking it (no re-read, no re-parse), unless
   * it is not a file this instance knows to be valid: then it is checked once, and a corrupt one
   * is moved aside instead, so a corrupt main neither fails the save nor replaces a good backup.
   */
  private async backupCurrentMain(): Promise<void> {
    const fileSystem = this.options.fileSystem;
    let current: FileStat;
    try {
      current = await fileSystem.stat(this.metricsPath);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw new StorageIOError('stat', this.metricsPath, error);
    }
    if (identityOf(current) !== this.knownValidMain) {
      const main = await readGeneration(fileSystem, this.metricsPath);
      if (main.kind === 'missing') return;
      if (main.kind === 'invalid') {
        const quarantinedPath = await quarantine(fileSystem, this.metricsPath);
        this.notify({ action: 'quarantined-before-save', reason: main.reason, quarantinedPath });
        return;
      }
    }
    // After a write that failed past the backup step, the .bak already is this very file; a
    // rename between two links of one inode does nothing and would leave the temp link behind.
    const backup = await fileSystem.stat(this.backupPath).catch(() => undefined);
    if (backup && backup.ino === current.ino && backup.dev === current.dev) return;
    try {
      await this.linkAsBackup();
    } catch (error) {
      throw error instanceof MetricsError ? error : new StorageIOError('backup', this.backupPath, error);
    }
  }

  private async linkAsBackup(): Promise<void> {
    const fileSystem = this.options.fileSystem;
    const temp = tempPathFor(this.backupPath);
    try {
      await fileSystem.link(this.metricsPath, temp);
    } catch (error) {
      if (!LINK_UNSUPPORTED.has(errnoCode(error) ?? '')) throw error;
      const { data } = await fileSystem.readFile(this.metricsPath);
      await writeFileAtomic(fileSystem, this.backupPath, data, this.options);
      return;
    }
    try {
      await fileSystem.rename(temp, this.backupPath);
    } catch (error) {
      await fileSystem.unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  private assertValid(state: DashboardState): void {
    const issues = validateState(state);
    if (issues.length > 0) throw new StateValidationError(issues);
  }

  private serialize(state: DashboardState): Buffer {
    try {
      // Two-space indentation, like the Python implementation, so diffs and eyes can read it.
      return Buffer.from(`${JSON.stringify(state, null, 2)}\n`);
    } catch (error) {
      // Extra keys may hold values JSON cannot represent (BigInt, cycles).
      throw new MetricsError(
        'E_INVALID_STATE',
        `state cannot be written as JSON: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  private notify(report: RecoveryReport): void {
    // A failing callback must not undo or fail a recovery that already happened on disk.
    callSafely(this.options.onRecover, report);
  }

  private async ensureDir(): Promise<void> {
    if (this.dirReady) return;
    try {
      const created = await this.missingFolders();
      await this.options.fileSystem.mkdir(this.dir);
      // A new folder's name lives in its parent: unless the parent is fsynced too, a power cut can
      // take the folder away, and every write acknowledged inside it (found by the power-cut test).
      if (this.options.durability === 'fsync') {
        for (const dir of created) await fsyncDirectory(this.options.fileSystem, dirname(dir));
      }
    } catch (error) {
      throw new StorageIOError('create folder', this.dir, error);
    }
    this.dirReady = true;
  }

  /** The project folder and those of its parents that do not exist yet, deepest first. */
  private async missingFolders(): Promise<string[]> {
    const missing: string[] = [];
    for (let dir = this.dir; dirname(dir) !== dir && !(await this.exists(dir)); dir = dirname(dir)) {
      missing.push(dir);
    }
    return missing;
  }

  /** False only when `path` does not exist; any other stat failure is E_IO, never "missing". */
  private async exists(path: string): Promise<boolean> {
    try {
      await this.options.fileSystem.stat(path);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false;
      throw new StorageIOError('stat', path, error);
    }
  }

  private async sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await this.options.fileSystem.stat(path)).size;
    } catch {
      return undefined;
    }
  }
}
