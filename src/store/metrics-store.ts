import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { errnoCode, MetricsError, StateValidationError, StorageIOError } from '../errors.js';
import {
  applyChange,
  changedValues,
  plainEventCopy,
  type RecordEventOperation,
  recordEventPatch,
} from '../model/operations.js';
import { assertTokenTotalsFit } from '../model/record-event.js';
import { changeLooksValid, uncheckedProfileIssues, validateState } from '../model/schema.js';
import { isCheckedOpenSessions, OPEN_SESSIONS_KEY, type OpenSession } from '../model/sessions.js';
import { type Caps, capsFor, createEmptyState, RETENTION_KEY, toTimestamp } from '../model/state.js';
import {
  applyPatch,
  changedPart,
  changedProfileValues,
  diffStates,
  journalForm,
  malformedContainers,
  type StatePatch,
  type StoredState,
  toStored,
} from '../model/state-patch.js';
import type { AgentEvent, AgentProfile, DashboardState } from '../model/types.js';
import { workingCopy } from '../model/working-copy.js';
import { callSafely } from '../safe-call.js';
import { asJson } from './as-json.js';
import {
  commitFile,
  discardFile,
  type PreparedFile,
  prepareFile,
  sweepTempFiles,
  tempPathFor,
} from './atomic-write.js';
import type { MetricsBackend, StateMutator } from './backend.js';
import { type FileStat, fsyncDirectory } from './file-system.js';
import {
  JOURNAL_BINDING_KEY,
  type JournalBinding,
  replayStart,
  takeBinding,
  withBinding,
} from './journal-binding.js';
import { inodeOf, JournalAppender, readFrom, truncateDurably } from './journal-file.js';
import {
  encodeHeader,
  encodeLine,
  JOURNAL_FORMAT,
  JOURNAL_RESERVE_AFTER,
  JOURNAL_RESERVE_BYTES,
  JOURNAL_RESERVE_LOW_WATER,
  type ParsedJournal,
  parseEntries,
  parseHeader,
} from './journal-format.js';
import { JournalWatch, settlesAt } from './journal-watch.js';
import { FileLock } from './lock.js';
import { MutatorGuard, type MutatorRun, origin, outsideRuns } from './mutator-guard.js';
import { type MetricsStoreOptions, type ResolvedStoreOptions, resolveStoreOptions } from './options.js';
import { identityOf, keepCopyAside, quarantine, type RecoveryReport, readGeneration } from './recovery.js';
import { snapshotPieces } from './snapshot-text.js';

export const METRICS_FILE = '.agent_metrics.json';
export const BACKUP_FILE = '.agent_metrics.json.bak';
export const JOURNAL_FILE = '.agent_metrics.journal';
/** The journal a checkpoint folded, kept with the `.bak` it continues: see `replayThroughBackups`. */
export const JOURNAL_BACKUP_FILE = '.agent_metrics.journal.bak';
export const LOCK_FILE = '.agent_metrics.lock';

/** Storage statistics; never fails, whatever state the files are in. */
export interface StoreStats {
  metricsFileExists: boolean;
  backupFileExists: boolean;
  journalFileExists: boolean;
  metricsFileSizeBytes: number;
  backupFileSizeBytes: number;
  journalFileSizeBytes: number;
  /** Counts of the current state (JSON file plus journal); 0 when it cannot be read. */
  eventCount: number;
  sessionCount: number;
  agentCount: number;
  /** False when the main file exists but is corrupt (the next load will recover it). */
  metricsFileValid: boolean;
  /**
   * Present when a file could not be read (the message of the E_IO error a load would throw:
   * EACCES, EIO, …): the counts and `metricsFileValid` then say nothing about the project.
   */
  readError?: string;
  /**
   * Present when the counts are the main file's alone: the journal could not be taken without the
   * lock (it needs a repair, or other writers kept changing the files meanwhile). The next load
   * takes it, and may count more.
   */
  countsOfMainFileAlone?: true;
}

// Errors for which a hard link cannot be made on this file system; the backup is copied instead.
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * The root values of a recorded event's patch that need checking: a list of sessions in progress
 * made from a checked one (`recordedInOpenSession`) is valid, and no deeper than it.
 */
function rootToCheck(set: Record<string, unknown>): Record<string, unknown> {
  if (!isCheckedOpenSessions(set[OPEN_SESSIONS_KEY])) return set;
  const { [OPEN_SESSIONS_KEY]: _checked, ...others } = set;
  return others;
}

/** `changeLooksValid` of a change that sets nothing: spread, and set what a change does. */
const NOTHING_CHANGED = { root: {}, removed: [], profiles: [], profileFields: [], events: [], sessions: [] };

/** A change ready for the journal: its line, and the state it leads to. */
interface JournaledChange {
  state: StoredState;
  bytes: Buffer;
}

/**
 * Whether a journal holds no change and no complete line in a torn end: nothing to keep, the next
 * write replaces it.
 */
function holdsNothing(header: ReturnType<typeof parseHeader>, data: Buffer): boolean {
  if (!('id' in header)) return false;
  const held = parseEntries(data, header.end);
  return held.entries.length === 0 && held.tornLines === 0;
}

/** A lock-free read that finds the journal not matching the JSON file retries this often, then locks. */
const UNLOCKED_READ_ATTEMPTS = 3;

/** The JSON file as last read or written. */
interface SnapshotInfo {
  /** `identityOf` the main file; undefined when there is none. */
  identity: string | undefined;
  size: number;
  binding: JournalBinding | undefined;
}

/** The journal as last read or written: its lines up to `offset` are in the view's state. */
interface JournalInfo {
  id: string;
  inode: string;
  headerEnd: number;
  offset: number;
  /** The file's size as last seen: past `offset`, up to here, NUL bytes reserved for the next lines. */
  size: number;
}

/**
 * How much of the journal a write first reads past its view to find what other processes appended:
 * their lines (8 processes: 7 lines of ~0.6–1.4 KB) and NUL bytes after them fit in it; else it
 * reads all the rest (see `readAppended`).
 */
const APPENDED_WINDOW_BYTES = 16 * 1024;

/** The current state and where it came from. Views are never modified, only replaced. */
interface View {
  state: StoredState;
  snapshot: SnapshotInfo;
  /** Undefined: no journal continues the snapshot yet; the next write makes a checkpoint. */
  journal: JournalInfo | undefined;
  /**
   * Fold the journal into a checkpoint at the next write, and never cut it or write into it in
   * place meanwhile: damaged lines were skipped, its torn end holds complete lines, it has
   * another name (a copy kept as evidence), its format is older, an fdatasync failed, or it was
   * cut below this view from outside.
   */
  needsCheckpoint: boolean;
}

/** What an update writes: the change a mutator makes, or an event recorded as an operation. */
type UpdateWork = { mutate: StateMutator; record?: never } | { record: AgentEvent; mutate?: never };

/**
 * A queued update. Every one has all four fields, so that they share one object shape: made as
 * `{ ...work, resolve, reject }` (two shapes, by spread) they cost ~12 % of the CPU of a recorded
 * event with 64 callers (`node bench/probes/record-cpu.mjs`, 4 pairs alternately: 36.8–39.4
 * against 42.2–45.9 µs per event).
 */
interface PendingUpdate {
  /** `record` holds the event (whatever a caller passed: it is validated), else `mutate` runs. */
  recorded: boolean;
  mutate: StateMutator | undefined;
  record: AgentEvent | undefined;
  /** The mutator run this update was queued from, if any (see MutatorGuard). */
  origin: MutatorRun | undefined;
  resolve: (state: StoredState) => void;
  reject: (error: unknown) => void;
}

/** An update whose line is written, with the state it led to. */
interface CommittedUpdate {
  update: PendingUpdate;
  state: StoredState;
}

/** A batch written under the lock, to be answered once its lines are on disk. */
interface WrittenBatch {
  committed: CommittedUpdate[];
  /**
   * When the batch appended lines: the answer of the last batch appended before it since the last
   * checkpoint (`lastAppended`; resolves to that batch's failure, or undefined; maybe settled).
   */
  appendedAfter: Promise<unknown> | undefined;
  appended: boolean;
}

/** What `keepEvidence` did: the copy's path, or why there is none. */
interface KeptCopy {
  kept?: string;
  failure?: string;
}

/** Why no copy of `name` was kept, for a report (a kept one is named by the report's paths). */
function copyFailure(copy: KeptCopy, name: string): string {
  return copy.failure === undefined ? '' : `; no copy of ${name} could be kept: ${copy.failure}`;
}

/**
 * For a read's start. Its file-system calls run synchronously (see `nodeFileSystem`), so without
 * this a loop of reads (`while (!done) await store.load()`) never lets the event loop turn: the
 * writes it waits for never finish their fdatasync, and their lease keeps other processes out.
 */
function letEventLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Thrown by a lock-free read that cannot finish alone: `repair` when a file needs recovery (take
 * the lock at once), else the files were between the two renames of a checkpoint (read again).
 */
class RetryUnlocked extends Error {
  constructor(readonly repair: boolean) {
    super(repair ? 'needs repair under the lock' : 'files changed while read');
  }
}

/**
 * The persistence layer: one JSON file per project (`.agent_metrics.json`, the shared format),
 * its previous generation (`.bak`), a journal of the changes made since that file was written
 * (`.agent_metrics.journal`), and a lock. See design.md §3 for the guarantees it keeps, and the
 * README's "Write path" for how the journal and checkpoints work.
 */
export class MetricsStore implements MetricsBackend {
  readonly dir: string;
  readonly metricsPath: string;
  readonly backupPath: string;
  readonly journalPath: string;
  readonly journalBackupPath: string;
  readonly lockPath: string;
  private readonly options: ResolvedStoreOptions;
  private readonly lock: FileLock;
  private readonly appender: JournalAppender;
  private readonly journalWatch: JournalWatch;
  /** What this instance read or wrote under the lock; lock-free reads start from it but never change it. */
  private view: View | undefined;
  /**
   * `lock.acquisitions` when `view` was last set: while it is the same, the lock was held
   * throughout (a lease), so no other process can have appended to the journal since.
   */
  private viewAcquisition = -1;
  /**
   * The main file as a lock-free read last parsed it, while this instance keeps no view: such
   * reads keep none, and re-read the whole file at every `load()` of an instance that does not
   * write (0.45–0.55 s each at 50,000 events). Reused by lock-free reads while the file's identity
   * and ctime are unchanged (the journal is read again, and must continue it); never under the
   * lock, which reads the file itself. Kept only for a file whose times had settled when read (`settlesAt`):
   * a file replaced within the same tick of the file system's clock, with the same size and a
   * reused inode, has the same identity (a cold review made one with three quick checkpoints).
   */
  private snapshotRead: { snapshot: SnapshotInfo; state: StoredState; ctimeMs: number } | undefined;
  private pending: PendingUpdate[] = [];
  private flushing: Promise<void> | undefined;
  private checkpointing: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** When this store last wrote (performance.now()): the idle timer re-arms itself until it is old enough. */
  private lastWriteAt = 0;
  private dirReady = false;
  /** Sweep leftover temp files at the next write: at first, and after a failed write. */
  private sweepNeeded = true;
  /**
   * A journal fdatasync failed. Linux reports a writeback error once and marks the pages clean:
   * those lines may never reach the disk although they are read back now, and a line appended
   * after them would be lost with them (a torn middle). So the next write checkpoints from
   * memory instead, which writes and fsyncs the whole state, these lines included, before
   * anything else is appended. Cleared by a checkpoint.
   */
  private syncFailed = false;
  /** Laying the journal's reserve failed (a full disk): not tried again before the next checkpoint. */
  private reserveFailed = false;
  /** The torn end (journal id, inode and end; `:copied` once a copy is kept) last reported. */
  private tornEndSaid: string | undefined;
  /** Copies `keepEvidence` kept, by journal (id and inode: an inode number may come back). */
  private readonly copiesKept = new Map<string, string>();
  /** The answer of the last batch that appended lines (see `WrittenBatch.appendedAfter`). */
  private lastAppended: Promise<unknown> | undefined;
  /** Batches written and not answered yet: `settle()` waits for them. */
  private readonly answering = new Set<Promise<unknown>>();
  /** Sees writes made from inside this store's own mutators, which would wait for themselves. */
  private readonly mutators: MutatorGuard;

  constructor(options: MetricsStoreOptions) {
    this.options = resolveStoreOptions(options);
    this.mutators = new MutatorGuard();
    this.dir = this.options.dir;
    this.metricsPath = join(this.dir, METRICS_FILE);
    this.backupPath = join(this.dir, BACKUP_FILE);
    this.journalPath = join(this.dir, JOURNAL_FILE);
    this.journalBackupPath = join(this.dir, JOURNAL_BACKUP_FILE);
    this.lockPath = join(this.dir, LOCK_FILE);
    this.lock = new FileLock(this.options.fileSystem, this.lockPath, {
      timeoutMs: this.options.lockTimeoutMs,
      fileMode: this.options.fileMode,
      leaseMs: this.options.lockLeaseMs,
      wait: this.options.lockWait,
    });
    this.appender = new JournalAppender(this.options.fileSystem, this.journalPath);
    this.journalWatch = new JournalWatch(this.options.fileSystem, this.dir, this.journalPath);
  }

  get projectName(): string {
    return this.options.projectName;
  }

  /**
   * The current state: the JSON file plus the journal's changes. Takes no lock when the files
   * are sound (the common case). A missing main file gives a fresh state; a corrupt one is
   * recovered under the lock (see `onRecover`). Never returns an empty state because a lock was
   * busy: it waits, or throws E_LOCK_TIMEOUT. The stored events and sessions in the result are
   * frozen (they are history); everything else may be changed freely.
   */
  async load(): Promise<DashboardState> {
    return workingCopy((await this.readUnlocked()).state);
  }

  /**
   * Replaces the whole state: validates `state` (throws `StateValidationError` naming each bad
   * path, writing nothing), sets `updated_at`, applies the FIFO caps, keeps the current main file
   * as `.bak`, and writes the new state atomically and durably as a checkpoint (the journal
   * starts anew). Returns the state as saved; the argument is not modified.
   */
  async save(state: DashboardState): Promise<DashboardState> {
    const refused = this.mutators.refusal('save()');
    if (refused) throw refused;
    // Through JSON, as the journal does: what is validated and kept is what a later load reads.
    // Validated before the caps, so that issues name the paths of `state` as given.
    const replacement = this.encode(this.replacement(state)).patch;
    const nothing = toStored({ agents: {}, events: [], sessions: [] } as unknown as DashboardState);
    this.assertValid(changedPart(nothing, replacement));
    const next = applyPatch(toStored(this.freshState()), replacement);
    await this.ensureDir();
    const saved = await this.lock.run(async () => {
      // Nothing is read: the state is replaced, and the old journal with it. A corrupt main file
      // is moved aside by the backup step, never recovered just to be overwritten.
      const replaced: View = {
        state: toStored(this.freshState()),
        snapshot: { identity: this.view?.snapshot.identity, size: 0, binding: undefined },
        journal: undefined,
        needsCheckpoint: false,
      };
      await this.checkpointLocked(replaced, next);
      return next;
    });
    return workingCopy(saved);
  }

  /**
   * Atomic read-modify-write: the lock is held from read to write, so concurrent updates from
   * this and other processes are never lost. `mutate` changes the state in place and may be
   * async; the lock is held while it runs, so keep it short. If it throws, nothing is written and
   * the error propagates. Resolves once the change is on disk, with the state as saved.
   *
   * Updates called while another is being written are written together: one journal append and
   * one fdatasync for all of them (group commit). Each `mutate` still sees the changes of those
   * before it, and one that throws fails alone. A write to this store (or a `save()`,
   * `checkpoint()`, `close()`) from inside `mutate` would wait for `mutate`: it fails at once with E_CONFLICT,
   * whether `mutate` awaits it or not (store/mutator-guard.ts says what it does not see).
   */
  async update(mutate: StateMutator): Promise<DashboardState> {
    return workingCopy(await this.enqueue({ mutate }));
  }

  /**
   * `update` without the state returned: the copy `update` makes for its caller took ~10 % of a
   * recorded event with 64 concurrent callers and `durability: 'none'` (77 → 69 µs per event in
   * `bench/probes/cpu-per-event.mjs` with the copy removed), and `AgentMetrics` reads none.
   */
  async commit(mutate: StateMutator): Promise<void> {
    await this.enqueue({ mutate });
  }

  /**
   * Records `event` (complete and valid, as `AgentMetrics` builds it) as `recordEvent` in
   * model/record-event.ts does, in one durable write, like `commit` with that mutator. The journal
   * holds the operation rather than the values it changed (model/operations.ts): no working copy,
   * no diff, and a line of ~0.6 KB instead of ~1.4 KB. The event, and what recording it changes,
   * are validated as an `update` is (`StateValidationError`, E_INVALID_STATE; nothing written),
   * but an event whose tokens would push the project's, its agent's or its session's
   * `total_tokens` past `Number.MAX_SAFE_INTEGER` is `InvalidInputError` (E_INVALID_INPUT naming
   * `total_tokens`; nothing written), as in `recordEvent` of model/record-event.ts.
   */
  async recordEvent(event: AgentEvent): Promise<void> {
    await this.enqueue({ record: event });
  }

  /**
   * Queues `work` for the next batch; resolves to the state it led to, once on disk. Queued at
   * once, not after an await: `close()` and `checkpoint()` called right after it must see it.
   */
  private enqueue(work: UpdateWork): Promise<StoredState> {
    const from = origin();
    const refused = this.mutators.refusal('a write', from);
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const recorded = 'record' in work;
      this.pending.push({
        recorded,
        mutate: work.mutate,
        record: work.record,
        origin: from,
        resolve,
        reject,
      });
      this.flushing ??= outsideRuns(() => this.flushPending());
    });
  }

  /**
   * Folds the journal into `.agent_metrics.json` now, and waits for it: afterwards the JSON file
   * alone holds the whole state (for readers that do not know the journal, such as the Python
   * dashboard). Checkpoints also happen by themselves (`checkpointBytes`, `checkpointIdleMs`).
   */
  async checkpoint(): Promise<void> {
    const refused = this.mutators.refusal('checkpoint()');
    if (refused) throw refused;
    await this.settle();
    // No journal: the JSON file already holds everything (or nothing was ever written).
    if (!(await this.exists(this.journalPath))) return;
    await this.lock.run(async () => {
      const current = await this.readLocked();
      const journal = current.journal;
      if (journal === undefined || journal.offset > journal.headerEnd || current.needsCheckpoint) {
        await this.checkpointLocked(current, current.state);
      }
    });
  }

  /**
   * Waits for pending writes, stops the idle timer and makes a last checkpoint when the journal
   * holds changes. The store stays usable; call it when you are done writing for a while. With
   * `checkpoint: false`, no checkpoint (which waits for the lock): the journal keeps the changes,
   * and the next writer or reader with the lock folds them.
   */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    const refused = this.mutators.refusal('close()');
    if (refused) throw refused;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    try {
      if (options.checkpoint === false) await this.settle();
      else await this.checkpoint();
    } finally {
      await this.releaseDescriptors();
    }
  }

  /**
   * Sizes and counts of the files. Never throws. Like `load()`, it reads the main file again only
   * when its identity (device, inode, size, mtime) changed since this instance read it: a file
   * rewritten in place with its size and mtime kept (`touch -r`) is judged as it was.
   */
  async getStats(): Promise<StoreStats> {
    await letEventLoopTurn();
    const [mainSize, backupSize, journalSize] = await Promise.all([
      this.sizeOf(this.metricsPath),
      this.sizeOf(this.backupPath),
      this.sizeOf(this.journalPath),
    ]);
    // An unreadable file is not a corrupt one: it is named, not counted as invalid and empty.
    let readError: string | undefined;
    const unreadable = (error: unknown) => {
      if (error instanceof StorageIOError) readError ??= error.message;
      return undefined;
    };
    // One lock-free read: statistics never repair anything (a load does).
    // Read again, as a load does, when another writer's checkpoint changed the files meanwhile:
    // a single read reported 0 events then.
    const view = await this.readWithoutLock().catch(unreadable);
    // A view has the main file's identity only when it was read from it, valid. Without a view
    // (a corrupt file, or a journal that needs repair), the file is judged alone: after the
    // view's read, not beside it, which held two parsed copies of a large file at once. Its
    // counts are then the main file's (what a load gives when it sets the journal aside), not 0.
    const main = view
      ? undefined
      : await readGeneration(this.options.fileSystem, this.metricsPath).catch(unreadable);
    const mainValid = view ? view.snapshot.identity !== undefined : main?.kind === 'valid';
    const stored = view?.state;
    const file = main?.kind === 'valid' ? main.state : undefined;
    const eventCount = stored?.events.length ?? file?.events.length ?? 0;
    const sessionCount = stored?.sessions.length ?? file?.sessions.length ?? 0;
    const agentCount = stored ? stored.agents.size : file ? Object.keys(file.agents).length : 0;
    // A valid main file without a view, and nothing unreadable: counted alone.
    const mainAlone = view === undefined && main?.kind === 'valid' && readError === undefined;
    return {
      ...(readError === undefined ? {} : { readError }),
      ...(mainAlone ? { countsOfMainFileAlone: true as const } : {}),
      metricsFileExists: mainSize !== undefined,
      backupFileExists: backupSize !== undefined,
      journalFileExists: journalSize !== undefined,
      metricsFileSizeBytes: mainSize ?? 0,
      backupFileSizeBytes: backupSize ?? 0,
      journalFileSizeBytes: journalSize ?? 0,
      eventCount,
      sessionCount,
      agentCount,
      metricsFileValid: mainValid,
    };
  }

  // ---- reading -------------------------------------------------------------------------------

  /** The current state without the lock; takes it only when something needs repair. */
  private async readUnlocked(): Promise<View> {
    await letEventLoopTurn();
    const view = await this.readWithoutLock();
    if (view !== undefined) return view;
    await this.ensureDir();
    return this.lock.run(() => this.readLocked());
  }

  /**
   * The current state read without the lock, read again while the files change under it (another
   * writer's checkpoint); undefined when they need a repair, or kept changing.
   */
  private async readWithoutLock(): Promise<View | undefined> {
    for (let attempt = 1; attempt <= UNLOCKED_READ_ATTEMPTS; attempt++) {
      try {
        return await this.readView(false);
      } catch (error) {
        if (!(error instanceof RetryUnlocked)) throw error;
        // The files changed while read, or need a repair: nothing read before is to be trusted.
        this.snapshotRead = undefined;
        if (error.repair) break;
      }
    }
    return undefined;
  }

  /** Whether the main file is still the one `snapshot` was read from (not replaced meanwhile). */
  private async isStillMain(snapshot: SnapshotInfo): Promise<boolean> {
    const now = await this.options.fileSystem.stat(this.metricsPath).catch(() => undefined);
    return snapshot.identity !== undefined && now !== undefined && identityOf(now) === snapshot.identity;
  }

  /** Under the lock: the current state, with any repair done, remembered as this instance's view. */
  private async readLocked(): Promise<View> {
    const view = await this.readView(true);
    // A failed fdatasync forces a checkpoint even when the view was just re-read (see `syncFailed`).
    return this.keepView(
      this.syncFailed && view.journal !== undefined ? { ...view, needsCheckpoint: true } : view,
    );
  }

  /**
   * Keeps `view` as what this instance read or wrote under the lock now (held since: see
   * `viewAcquisition`); the main file kept for lock-free reads goes, the view holding it.
   */
  private keepView(view: View): View {
    this.view = view;
    this.viewAcquisition = this.lock.acquisitions;
    this.snapshotRead = undefined;
    return view;
  }

  /**
   * Reads the JSON file (only when it changed since this instance's view) and the journal lines
   * not yet applied. Without the lock it repairs nothing: it throws RetryUnlocked when the files
   * need a repair or are between the two renames of a checkpoint, and ignores a torn last line
   * (a write in progress). With the lock it repairs, reporting each repair to `onRecover`.
   */
  private async readView(locked: boolean): Promise<View> {
    const fileSystem = this.options.fileSystem;
    const known = this.view;
    const heldThroughout = locked && this.viewAcquisition === this.lock.acquisitions;
    // Before the stat: a file replaced from then on has a later mtime, unless it was within one
    // tick of the clock of the file stat-ed (see `snapshotRead`).
    const statAt = Date.now();
    const mainStat = await this.statOrUndefined(this.metricsPath);
    let snapshot: SnapshotInfo;
    let state: StoredState;
    let journal: JournalInfo | undefined;
    const identity = mainStat && identityOf(mainStat);
    if (known && known.snapshot.identity === identity) {
      ({ snapshot, state, journal } = known);
    } else if (
      !locked &&
      identity !== undefined &&
      this.snapshotRead?.snapshot.identity === identity &&
      // A change in place that put the mtime back (`touch -r`) cannot put the ctime back.
      this.snapshotRead.ctimeMs === mainStat?.ctimeMs
    ) {
      ({ snapshot, state } = this.snapshotRead);
      journal = undefined;
    } else {
      ({ snapshot, state } = await this.readSnapshot(locked));
      journal = undefined;
      const ctimeMs = mainStat?.ctimeMs;
      const settled =
        ctimeMs !== undefined && snapshot.identity === identity && statAt > settlesAt(mainStat as FileStat);
      this.snapshotRead =
        !locked && settled && this.view === undefined ? { snapshot, state, ctimeMs } : undefined;
    }

    let needsCheckpoint = known?.needsCheckpoint === true && journal !== undefined;
    // Held since this view was written (a lease): nobody else appended. Checked without a stat of
    // the journal when the directory tells that it is the same file (see `JournalWatch`).
    const leased = heldThroughout && journal !== undefined && !this.syncFailed ? journal : undefined;
    let dirStat: FileStat | undefined;
    let writtenPastView = false;
    if (leased) {
      const read = (offset: number, length: number) => this.appender.readKept(leased.inode, offset, length);
      const watched = await this.journalWatch.check(leased, read);
      if (watched.untouched) return { state, snapshot, journal: leased, needsCheckpoint };
      writtenPastView = watched.written === true;
      // Before the journal's stat: a rename in between then changes the directory's stamp again.
      dirStat =
        watched.dirStat ?? (this.journalWatch.worthWatching ? await this.journalWatch.statDir() : undefined);
    }
    const journalStat = await this.statOrUndefined(this.journalPath);
    if (journalStat === undefined) return { state, snapshot, journal: undefined, needsCheckpoint: false };
    // The journal has another name (a copy another process kept as evidence, the .journal.bak
    // link of a crashed checkpoint, a hard-link backup). This process's read may stop before the
    // damage that copy was kept for, so cutting or appending here would change the copy. The
    // store makes its links under the lock; a lease skips this stat for at most `JournalWatch`'s
    // trust time, so a link made from outside meanwhile is written into until then.
    if (locked && (journalStat.nlink ?? 1) > 1) needsCheckpoint = true;

    let data: Buffer;
    let base: number;
    if (journal !== undefined && journal.inode === inodeOf(journalStat)) {
      // A size that changed under a lease means someone wrote without the lock, which is read as
      // usual. (Skipping this stat for a few ms on trust alone let a write go to a journal that a
      // file renamed over it had replaced, lost with the old inode: hence `JournalWatch`.)
      // (Unless bytes were seen written into the reserve: same size, and read below.)
      if (leased && journalStat.size === journal.size && !writtenPastView) {
        if (dirStat) await this.journalWatch.saw(dirStat, journal.inode);
        return { state, snapshot, journal, needsCheckpoint };
      }
      if (journal.size !== journalStat.size) journal = { ...journal, size: journalStat.size };
      // Nothing appended since this view, and no reserve to look into.
      if (journalStat.size === journal.offset) return { state, snapshot, journal, needsCheckpoint };
      // Cut below what this instance read, by someone not holding the lock (a copy over it): the
      // state in memory holds more than the file. The next write folds it into a checkpoint.
      if (journalStat.size < journal.offset) return { state, snapshot, journal, needsCheckpoint: locked };
      // After a failed fdatasync the pages it lost may read back as NUL bytes before later lines.
      data = await this.readAppended(journal, locked, this.syncFailed);
      base = journal.offset;
    } else {
      const read = await readFrom(fileSystem, this.journalPath, 0);
      if (read === undefined) return { state, snapshot, journal: undefined, needsCheckpoint: false };
      const header = parseHeader(read.data);
      const start = 'id' in header ? replayStart(snapshot.binding, header.id, header.end) : undefined;
      if (!('id' in header) || start === undefined) {
        if (!locked) {
          // A main file that names no journal (the Python side saved it after our checkpoint), not
          // replaced since it was read, and a journal of a header alone: what the locked read below
          // would do is nothing (no rebuild can start from a file that names no journal), so read
          // as it is. Else each load took the lock and wrote the lock file, and a reader without
          // write access could not load at all. (A main file that names a journal may be a .bak
          // restored by an interrupted recovery, whose changes since are in .journal.bak.)
          // (The binding first: a journal mid-checkpoint is not parsed whole at each retry.)
          if (
            snapshot.binding === undefined &&
            holdsNothing(header, read.data) &&
            (await this.isStillMain(snapshot))
          ) {
            return { state, snapshot, journal: undefined, needsCheckpoint: false };
          }
          throw new RetryUnlocked(false);
        }
        const rebuilt =
          'id' in header ? await this.replayThroughBackups(state, snapshot.binding, header, read) : undefined;
        if (rebuilt) {
          const damagedLines = rebuilt.backup.damagedLines + rebuilt.journal.damagedLines;
          const tornLines = rebuilt.journal.tornLines;
          const notTaken = [
            ...(damagedLines > 0 ? [`${damagedLines} damaged line(s) of them skipped`] : []),
            ...(tornLines > 0 ? [`${tornLines} complete line(s) in the journal's torn end not taken`] : []),
          ];
          // The checkpoint below replaces the journal, and the next one replaces .journal.bak:
          // a copy is kept of each that held lines not taken.
          const backupCopy =
            rebuilt.backup.damagedLines > 0
              ? await this.keepEvidence(this.journalBackupPath, rebuilt.backup.key)
              : {};
          const journalCopy =
            rebuilt.journal.damagedLines + tornLines > 0
              ? await this.keepEvidence(this.journalPath, rebuilt.journal.key)
              : {};
          const failures =
            copyFailure(backupCopy, JOURNAL_BACKUP_FILE) + copyFailure(journalCopy, 'the journal');
          const skipped = notTaken.length > 0 ? ` (${notTaken.join('; ')}${failures})` : '';
          this.notify({
            action: 'journal-replayed-from-backup',
            reason: `the state file was restored from its .bak: the changes made since were replayed from ${JOURNAL_BACKUP_FILE} and the journal${skipped}`,
            ...(backupCopy.kept && { quarantinedBackupPath: backupCopy.kept }),
            ...(journalCopy.kept && { quarantinedPath: journalCopy.kept }),
          });
          // Folded at once (we hold the lock): left as it is, the journal would be replayed on top
          // of the restored file by every read until the next write.
          await this.checkpointLocked(
            { state, snapshot, journal: undefined, needsCheckpoint: false },
            rebuilt.state,
          );
          return this.view as View;
        }
        // A journal with no change in it holds nothing to keep: the next write replaces it. (Not
        // when complete lines are torn off its end: those are set aside with it, as evidence.)
        if (holdsNothing(header, read.data))
          return { state, snapshot, journal: undefined, needsCheckpoint: false };
        const reason =
          'reason' in header ? header.reason : 'the journal does not continue .agent_metrics.json';
        const quarantinedPath = await quarantine(fileSystem, this.journalPath);
        this.notify({ action: 'journal-set-aside', reason, quarantinedPath });
        return { state, snapshot, journal: undefined, needsCheckpoint: false };
      }
      journal = {
        id: header.id,
        inode: inodeOf(read.stat),
        headerEnd: header.end,
        offset: start,
        size: read.stat.size,
      };
      data = read.data;
      base = 0;
      // Written by an older version: folded into a new journal before this version writes to it.
      if (header.format < JOURNAL_FORMAT) needsCheckpoint = true;
    }

    const parsed = parseEntries(data, journal.offset, base);
    for (const entry of parsed.entries) state = applyChange(state, entry.change);
    let size = journal.size;
    if (locked && parsed.damaged.length > 0) {
      const copy = await this.keepEvidence(this.journalPath, `${journal.id}:${journal.inode}`);
      const first = parsed.damaged[0] as { offset: number; reason: string };
      this.notify({
        action: 'journal-repaired',
        reason: `${parsed.damaged.length} damaged journal line(s) skipped (first at byte ${first.offset}: ${first.reason})${copyFailure(copy, 'the journal')}`,
        ...(copy.kept && { quarantinedPath: copy.kept }),
      });
      needsCheckpoint = true;
    }
    if (locked && parsed.tornBytes > 0) {
      if (parsed.tornLines > 0 || needsCheckpoint) {
        // Left to the checkpoint, which replaces the journal: never cut in place (see `View`).
        await this.leaveOutTornEnd(`${journal.id}:${journal.inode}`, parsed);
        needsCheckpoint = true;
      } else {
        // The reserve goes too: the next write lays a new one.
        size = parsed.validEnd;
        await truncateDurably(
          fileSystem,
          this.journalPath,
          parsed.validEnd,
          this.options.durability === 'fsync',
        );
        this.notify({
          action: 'journal-tail-truncated',
          reason: `${parsed.tornBytes} bytes of an interrupted write cut off the journal's end`,
        });
      }
    }
    return { state, snapshot, journal: { ...journal, offset: parsed.validEnd, size }, needsCheckpoint };
  }

  /**
   * A torn end left to the checkpoint instead of cut. When it holds complete lines (see
   * `ParsedJournal.tornLines`), a copy of the journal is kept: a power cut that lost a page leaves
   * such lines, never acknowledged, but so does damage to the journal's last lines, which were
   * (nothing tells which). The checkpoint renames a new journal over the name, so the copy (a hard
   * link: it needs no room for data) keeps every byte. Reported once per journal and end in this
   * instance; a copy that failed is tried (and reported) again by the next locked read. A later
   * read that sees fewer bytes (a window that ends in a lost page's NUL bytes) says nothing more.
   */
  private async leaveOutTornEnd(journal: string, parsed: ParsedJournal): Promise<void> {
    const end = `${journal}:${parsed.validEnd}`;
    const copied = `${end}:copied`;
    const what = `${parsed.tornBytes} bytes at the journal's end`;
    if (parsed.tornLines === 0) {
      if (this.tornEndSaid === end || this.tornEndSaid === copied) return;
      this.tornEndSaid = end;
      this.notify({
        action: 'journal-tail-truncated',
        reason: `${what}, an interrupted write, were not taken; the next write folds the journal into a checkpoint`,
      });
      return;
    }
    if (this.tornEndSaid === copied) return;
    const copy = await this.keepEvidence(this.journalPath, journal);
    if (copy.kept) this.tornEndSaid = copied;
    this.notify({
      action: 'journal-tail-truncated',
      reason: `${what}, ${parsed.tornLines} complete line(s) among them, were not taken (damaged lines, or lines after damaged bytes: what a power cut that lost a page leaves, or damage to the journal's last lines); the next write folds the journal into a checkpoint${copyFailure(copy, 'the journal')}`,
      ...(copy.kept && { quarantinedPath: copy.kept }),
    });
  }

  /**
   * Keeps a copy of `path` as evidence, or says why none could be made. One copy per file across
   * processes (a hard link already aside is reused, see `keepCopyAside`), and one per `journal`
   * key (its id and inode) in this instance, which also covers byte copies where links fail.
   * Never throws: a missing copy must not block writes, as a corrupt main file does not
   * (design.md §3.4).
   */
  private async keepEvidence(path: string, journal?: string): Promise<KeptCopy> {
    const known = journal === undefined ? undefined : this.copiesKept.get(journal);
    if (known !== undefined) return { kept: known };
    try {
      const kept = await keepCopyAside(this.options.fileSystem, path);
      if (journal !== undefined) this.copiesKept.set(journal, kept);
      return { kept };
    } catch (error) {
      return { failure: (error as Error).message };
    }
  }

  /**
   * The journal's bytes past the view: a first window, when it ends in the reserve (what other
   * writers appended since, then NUL bytes), or else (or when `whole`) all the rest of the file.
   * Past a view, the bytes are ones live processes wrote: the reserve is the only run of NUL bytes
   * there (damage on the disk, or a power cut, shows up in the first read after a restart, which
   * reads it all), unless an fdatasync failed: then `whole`. (Another process's failed fdatasync,
   * or a write from outside, may put NUL bytes there too: the window then ends in them, and the
   * lines after them are not seen until a read that reads it all. A journal with another name,
   * a copy kept of it, is never cut on what such a window shows: see `View`.)
   */
  private async readAppended(journal: JournalInfo, locked: boolean, whole: boolean): Promise<Buffer> {
    const rest = journal.size - journal.offset;
    if (!whole) {
      const window = await this.readPastView(journal, Math.min(rest, APPENDED_WINDOW_BYTES), locked);
      if (window.length === rest || window[window.length - 1] === 0) return window;
    }
    return this.readPastView(journal, rest, locked);
  }

  private async readPastView(journal: JournalInfo, length: number, locked: boolean): Promise<Buffer> {
    // Under the lock the size just read is where the file ends: nobody else writes.
    const kept = locked ? await this.appender.readKept(journal.inode, journal.offset, length) : undefined;
    if (kept !== undefined) return kept;
    const read = await readFrom(this.options.fileSystem, this.journalPath, journal.offset, length);
    if (read === undefined || inodeOf(read.stat) !== journal.inode) throw this.retryOrFail(locked);
    return read.data;
  }

  /**
   * The state of a snapshot found corrupt, rebuilt from what its checkpoint kept: `state` is the
   * `.bak` (restored in its place), `.journal.bak` is the journal the lost snapshot folded, replayed
   * up to where it folded it (the journal header's `follows`), and then the journal continues.
   * Undefined when these files do not fit together (then the journal is set aside, as before).
   */
  private async replayThroughBackups(
    state: StoredState,
    binding: JournalBinding | undefined,
    header: { id: string; end: number; follows?: { id: string; offset: number } },
    journal: { data: Buffer; stat: FileStat },
  ): Promise<
    | {
        state: StoredState;
        /** Each `key`: the file's journal id and inode, for `keepEvidence`. */
        backup: { damagedLines: number; key: string };
        journal: { damagedLines: number; tornLines: number; key: string };
      }
    | undefined
  > {
    const follows = header.follows;
    if (follows === undefined) return undefined;
    // Only a .journal.bak the main file names can rebuild it: one it does not name (the Python
    // side saved the main file since) is not read, so that it cannot fail a load it plays no part in.
    if (replayStart(binding, follows.id, 0) === undefined) return undefined;
    // Missing: nothing to replay through. Unreadable (EACCES, EIO, not a file): E_IO, as for any
    // file of the project; going on without it would set the journal aside and lose its lines.
    const kept = await readFrom(this.options.fileSystem, this.journalBackupPath, 0);
    if (kept === undefined) return undefined;
    const keptHeader = parseHeader(kept.data);
    if (!('id' in keptHeader) || keptHeader.id !== follows.id) return undefined;
    const start = replayStart(binding, keptHeader.id, keptHeader.end);
    if (start === undefined || follows.offset < start || follows.offset > kept.data.length) return undefined;
    const folded = parseEntries(kept.data.subarray(0, follows.offset), start);
    if (folded.validEnd !== follows.offset) return undefined;
    const continued = parseEntries(journal.data, header.end);
    let rebuilt = state;
    for (const entry of [...folded.entries, ...continued.entries])
      rebuilt = applyChange(rebuilt, entry.change);
    return {
      state: rebuilt,
      backup: { damagedLines: folded.damaged.length, key: `${keptHeader.id}:${inodeOf(kept.stat)}` },
      journal: {
        damagedLines: continued.damaged.length,
        tornLines: continued.tornLines,
        key: `${header.id}:${inodeOf(journal.stat)}`,
      },
    };
  }

  private retryOrFail(locked: boolean): Error {
    // Under the lock nobody replaces the journal; finding it gone means someone outside the
    // protocol did. Without the lock, a checkpoint replaced it between two reads: read again.
    if (!locked) return new RetryUnlocked(false);
    return new StorageIOError('read', this.journalPath, new Error('the journal was replaced while locked'));
  }

  /** The JSON file, recovered under the lock when missing or corrupt (design.md §3.4). */
  private async readSnapshot(locked: boolean): Promise<{ snapshot: SnapshotInfo; state: StoredState }> {
    const fileSystem = this.options.fileSystem;
    const main = await readGeneration(fileSystem, this.metricsPath);
    if (main.kind === 'valid') {
      const binding = takeBinding(main.state);
      return {
        state: toStored(main.state),
        snapshot: { identity: identityOf(main.stat), size: main.stat.size, binding },
      };
    }
    const fresh = {
      state: toStored(this.freshState()),
      snapshot: { identity: undefined, size: 0, binding: undefined },
    };
    if (main.kind === 'missing' && (await this.statOrUndefined(this.backupPath)) === undefined) return fresh;
    if (!locked) throw new RetryUnlocked(true);

    // The backup is read, and its copy written, before the corrupt main file is moved aside: a
    // backup that cannot be read (E_IO), or a copy that cannot be written (ENOSPC), then leaves the
    // files as they were, and the next load reports the same recovery.
    const backup = await readGeneration(fileSystem, this.backupPath, { keepBytes: true });
    // Write the backup's bytes back as they are: nothing in them is lost or reformatted.
    const prepared =
      backup.kind === 'valid'
        ? await prepareFile(fileSystem, this.metricsPath, backup.data, this.options)
        : undefined;
    let report: RecoveryReport;
    try {
      report =
        main.kind === 'missing'
          ? { action: 'started-fresh', reason: 'main file missing' }
          : {
              action: 'started-fresh',
              reason: main.reason,
              quarantinedPath: await quarantine(fileSystem, this.metricsPath),
            };
    } catch (error) {
      if (prepared !== undefined) await discardFile(fileSystem, prepared);
      throw error;
    }
    if (backup.kind === 'valid' && prepared !== undefined) {
      const stat = await commitFile(fileSystem, prepared, this.options);
      this.notify({ ...report, action: 'restored-from-backup' });
      const binding = takeBinding(backup.state);
      return {
        state: toStored(backup.state),
        snapshot: { identity: identityOf(stat), size: stat.size, binding },
      };
    }
    if (main.kind === 'missing' && backup.kind === 'missing') return fresh;
    if (backup.kind === 'invalid') {
      report.backupReason = backup.reason;
      report.quarantinedBackupPath = await quarantine(fileSystem, this.backupPath);
    } else {
      report.backupReason = 'backup file missing';
    }
    this.notify(report);
    return fresh;
  }

  // ---- writing -------------------------------------------------------------------------------

  /**
   * Writes queued updates in batches, one lock and one journal append per batch. A batch's
   * fdatasync runs after the lock is released (see `JournalAppender`), and its callers are
   * answered only once it is done; the next batch is written meanwhile (pipelined group commit).
   */
  private async flushPending(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        let batch: PendingUpdate[] = [];
        let written: WrittenBatch | undefined;
        let answered!: () => void;
        const answeredOrFailed = new Promise<void>((resolve) => {
          answered = resolve;
        });
        try {
          await this.ensureDir();
          await this.lock.run(async () => {
            // Taken once the lock is ours: callers who came while we waited join this batch.
            batch = this.pending.splice(0, this.nextBatchSize());
            written = await this.commitBatch(batch);
            // Its callers may write again as soon as they are answered: under the same lease.
            if (written) this.lock.keepUntil(answeredOrFailed);
          });
        } catch (error) {
          // The lock was not obtained, or the batch failed as a whole: fail those not yet settled.
          const failed = batch.length > 0 ? batch : this.pending.splice(0);
          for (const update of failed) update.reject(error);
          written = undefined;
        }
        if (written) void this.answerDurably(written).finally(answered);
        else answered();
        // Let a process woken by our release take the lock before this one takes it again.
        if (this.pending.length > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /**
   * How many queued updates the next batch takes: all of them, except when their fdatasync
   * would be the only one running. Then half: the other half is written while the first half's
   * fdatasync runs, instead of the CPU waiting for the disk with every caller queued behind it
   * (64 concurrent callers: 18–29 % of the wall time, fdatasyncs timed through a wrapping
   * `fileSystem`). Once one batch's fdatasync runs, the next takes all that is queued, so the
   * two halves alternate from then on.
   */
  private nextBatchSize(): number {
    const queued = this.pending.length;
    if (this.options.durability !== 'fsync' || this.appender.syncInFlight) return queued;
    return Math.ceil(queued / 2);
  }

  /**
   * Starts the fdatasync of a written batch (on the thread pool when more work is queued) and
   * answers its callers once it is done, after the batch it was appended after. A batch written
   * on top of lines whose fdatasync failed fails too: its lines may be all that survives.
   */
  private answerDurably(written: WrittenBatch): Promise<unknown> {
    const background = this.pending.length > 0 || this.appender.syncInFlight;
    const sync = this.appender.syncWritten({ background });
    const answer = (async (): Promise<unknown> => {
      let failure: unknown;
      try {
        await sync;
      } catch (error) {
        failure = error;
        this.syncFailed = true;
        this.sweepNeeded = true;
      }
      const earlier = await written.appendedAfter;
      failure ??= earlier;
      if (failure !== undefined) {
        for (const { update } of written.committed) update.reject(failure);
        return failure;
      }
      for (const { update, state } of written.committed) update.resolve(state);
      this.scheduleCheckpoint();
      return undefined;
    })();
    if (written.appended) this.lastAppended = answer;
    this.answering.add(answer);
    void answer.finally(() => this.answering.delete(answer));
    return answer;
  }

  /**
   * Under the lock: runs the batch's mutators and writes their lines (or checkpoints). Returns
   * the updates written, if any; those that failed are already rejected.
   */
  private async commitBatch(batch: PendingUpdate[]): Promise<WrittenBatch | undefined> {
    if (this.sweepNeeded) {
      this.sweepNeeded = false;
      await sweepTempFiles(this.options.fileSystem, this.dir, this.ownFiles());
    }
    const current = await this.readLocked();
    let state = current.state;
    const lines: Buffer[] = [];
    const committed: CommittedUpdate[] = [];
    for (const update of batch) {
      try {
        const change = update.recorded
          ? this.recordedChange(state, update.record as AgentEvent)
          : await this.mutatedChange(state, update.mutate as StateMutator, update.origin);
        state = change.state;
        lines.push(change.bytes);
        committed.push({ update, state });
      } catch (error) {
        update.reject(error);
      }
    }
    if (committed.length === 0) return undefined;
    let appended = false;
    let appendedAfter: Promise<unknown> | undefined;
    try {
      if (current.journal === undefined) {
        await this.checkpointLocked(current, state);
      } else if (current.needsCheckpoint) {
        // The batch's lines go into the new journal, not into the snapshot: if that snapshot is
        // ever lost, `.bak`, `.journal.bak` and the journal rebuild it, and the batch with it.
        await this.checkpointLocked(current, current.state, { lines: Buffer.concat(lines), after: state });
      } else {
        // Decided before the write: a failure noticed from here on is that batch's answer.
        appendedAfter = this.lastAppended;
        const journal = current.journal;
        const data = Buffer.concat(lines);
        const end = journal.offset + data.length;
        await this.appender.write(data, {
          offset: journal.offset,
          inode: journal.inode,
          sync: this.options.durability === 'fsync',
        });
        const reserve =
          !this.reserveFailed &&
          end - journal.headerEnd >= JOURNAL_RESERVE_AFTER &&
          end + JOURNAL_RESERVE_LOW_WATER > journal.size;
        // NUL bytes from where the file ends (or the lines, past it) on: those before it are NUL already.
        const from = Math.max(end, journal.size);
        const size = reserve
          ? await this.appender.layReserve(from, end + JOURNAL_RESERVE_BYTES, journal.size)
          : Math.max(journal.size, end);
        // A disk without room for it: not tried again on every write, until the next checkpoint.
        if (reserve && size < end + JOURNAL_RESERVE_BYTES) this.reserveFailed = true;
        this.keepView({ ...current, state, journal: { ...journal, offset: end, size } });
        appended = true;
      }
    } catch (error) {
      // What is on disk is unknown to this view now: read it again next time.
      this.view = undefined;
      this.sweepNeeded = true;
      for (const { update } of committed) update.reject(error);
      return undefined;
    }
    return { committed, appendedAfter, appended };
  }

  private async mutatedChange(
    state: StoredState,
    mutate: StateMutator,
    from: MutatorRun | undefined,
  ): Promise<JournaledChange> {
    const working = workingCopy(state);
    await this.mutators.run(mutate, working, from);
    return this.changeOf(state, working);
  }

  /**
   * Recording `event`, as the operation line the journal holds, validated, and the state it leads
   * to. The state is computed from the operation as the line gives it back (JSON.parse of its
   * JSON, or a copy of the event that is the same: `plainEventCopy`), so that this process and a
   * later replay agree exactly, as `changeOf` does for patches.
   */
  private recordedChange(before: StoredState, event: AgentEvent): JournaledChange {
    const { written: caps, retention } = this.capsOf(before as unknown as DashboardState);
    const plain = plainEventCopy(event);
    const operation: RecordEventOperation = {
      op: 'record_event',
      event: plain ?? event,
      at: toTimestamp(new Date()),
      caps,
    };
    if (retention) operation.retention = { ...caps };
    const json = asJson(() => JSON.stringify(operation));
    // What replay reads back: the operation itself when it holds a plain copy (all else in it is
    // new here and plain), else its JSON parsed.
    const journaled = plain === undefined ? (JSON.parse(json) as RecordEventOperation) : operation;
    // The event first: recording reads its fields (artifacts, numbers) as the schema has them.
    const events = [journaled.event];
    if (!changeLooksValid({ ...NOTHING_CHANGED, events })) {
      this.assertValid(changedPart(before, { events, caps: operation.caps }));
    }
    const patch = recordEventPatch(before, journaled);
    const name = journaled.event.agent_name;
    const profile = patch.agents?.[name] as AgentProfile;
    // Before the state's validation, which rejects such a total too, but as E_INVALID_STATE.
    const open = patch.set?.[OPEN_SESSIONS_KEY] as OpenSession[] | undefined;
    assertTokenTotalsFit(journaled.event, {
      project: patch.set?.total_tokens as number,
      agent: profile.total_tokens,
      session: open?.find((session) => session.session_id === journaled.event.session_id)?.total_tokens,
    });
    const previous = before.agents.get(name);
    const looksValid = changeLooksValid({
      ...NOTHING_CHANGED,
      root: rootToCheck(patch.set ?? {}),
      // An existing profile: what recording changed in it (recording removes no key).
      ...(previous === undefined
        ? { profiles: [profile] }
        : { profileFields: [{ values: changedValues(previous, profile), removed: [] }] }),
    });
    if (!looksValid) this.assertValid(changedPart(before, patch));
    return { state: applyPatch(before, patch), bytes: encodeLine(json) };
  }

  /**
   * The change `mutate` made, as the journal holds it (`journalForm`), validated, and the state it
   * leads to: that patch applied, so that this process and a later replay agree exactly. Only what
   * changed is checked, so cost does not grow with history.
   */
  private changeOf(before: StoredState, after: DashboardState): JournaledChange {
    const { caps, written, retention } = this.capsOf(after);
    after.updated_at = toTimestamp(new Date());
    if (retention) after[RETENTION_KEY] = written;
    // A container that is not one (agents replaced by an array, events deleted, …) is reported
    // as invalid before the diff, which reads them as containers.
    const malformed = malformedContainers(after);
    if (malformed) this.assertValid(malformed);
    const { patch, bytes } = this.encode(diffStates(before, after, caps));
    const state = applyPatch(before, patch);
    const looksValid = changeLooksValid({
      root: patch.set ?? {},
      removed: patch.unset ?? [],
      profiles: Object.values(patch.agents ?? {}),
      profileFields: changedProfileValues(before, state, patch),
      events: patch.all_events ?? patch.events ?? [],
      sessions: patch.all_sessions ?? patch.sessions ?? [],
    });
    // The full check only to say what is wrong (or to overrule the quick one, which is stricter).
    if (!looksValid) this.assertValid(changedPart(before, patch));
    return { state, bytes };
  }

  /** A patch that turns any state into `state` (for `save`): everything is replaced. */
  private replacement(state: DashboardState): StatePatch {
    const { written, retention } = this.capsOf(state);
    const { agents, events, sessions, [JOURNAL_BINDING_KEY]: _binding, ...rest } = state;
    const set: Record<string, unknown> = { ...rest, updated_at: toTimestamp(new Date()) };
    if (retention) set[RETENTION_KEY] = { ...written };
    return { set, agents, all_events: events, all_sessions: sessions, caps: written };
  }

  /**
   * The FIFO caps a change of `state` applies (this store's options, else the state's `retention`
   * key, else the defaults), and `written` as the journal and the `retention` key hold them;
   * `retention` when the options set them, which the state then records in its `retention` key.
   */
  private capsOf(state: DashboardState): {
    caps: Caps;
    written: { max_events: number; max_sessions: number };
    retention: boolean;
  } {
    const { maxEvents, maxSessions } = this.options;
    const caps = capsFor(state, { maxEvents, maxSessions });
    return {
      caps,
      written: { max_events: caps.maxEvents, max_sessions: caps.maxSessions },
      retention: maxEvents !== undefined || maxSessions !== undefined,
    };
  }

  /** `patch` as the journal holds it, and its line. */
  private encode(patch: StatePatch): { patch: StatePatch; bytes: Buffer } {
    const journaled = asJson(() => journalForm(patch));
    return { patch: journaled.patch, bytes: encodeLine(journaled.json) };
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  /** Starts a background checkpoint when the journal is big enough, else (re)arms the idle timer. */
  private scheduleCheckpoint(): void {
    const journal = this.view?.journal;
    if (!journal || !this.view) return;
    const pendingBytes = journal.offset - journal.headerEnd;
    if (pendingBytes >= Math.max(this.options.checkpointBytes, this.view.snapshot.size)) {
      this.startBackgroundCheckpoint();
      return;
    }
    if (this.options.checkpointIdleMs === 0) return;
    this.lastWriteAt = performance.now();
    // One timer for a run of writes, not one per write: it checks when it fires whether the
    // store has really been idle that long, and waits for the rest otherwise.
    this.idleTimer ??= this.armIdleTimer(this.options.checkpointIdleMs);
  }

  private armIdleTimer(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const idleFor = performance.now() - this.lastWriteAt;
      if (idleFor < this.options.checkpointIdleMs) {
        this.idleTimer = this.armIdleTimer(this.options.checkpointIdleMs - idleFor);
        return;
      }
      this.idleTimer = undefined;
      this.startBackgroundCheckpoint(true);
    }, delayMs);
    // A pending checkpoint must not keep the host process alive: the journal is durable already.
    timer.unref();
    return timer;
  }

  /** With `idle`, the descriptors kept open are closed afterwards, unless writes came meanwhile. */
  private startBackgroundCheckpoint(idle = false): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    // A failed background checkpoint loses nothing (the journal holds every change); the next
    // trigger tries again, and `checkpoint()` reports errors to its caller.
    this.checkpointing ??= this.backgroundCheckpoint()
      .catch(() => undefined)
      .finally(async () => {
        this.checkpointing = undefined;
        if (idle && !this.flushing && this.pending.length === 0) await this.releaseDescriptors();
      });
  }

  /** Closes the lock file and journal descriptors kept open between writes (they reopen on demand). */
  private async releaseDescriptors(): Promise<void> {
    await this.appender.close();
    await this.lock.close();
  }

  /**
   * Writes the snapshot of the current view without the lock (the slow part: ~30 MB at 50,000
   * events), then takes the lock only to carry the journal lines written meanwhile into a new
   * journal and rename both files in place.
   */
  private async backgroundCheckpoint(): Promise<void> {
    const start = this.view;
    if (start?.journal === undefined || start.journal.offset === start.journal.headerEnd) return;
    const binding: JournalBinding = {
      id: randomUUID(),
      folded_id: start.journal.id,
      folded_offset: start.journal.offset,
    };
    const prepared = await prepareFile(
      this.options.fileSystem,
      this.metricsPath,
      snapshotPieces(withBinding(start.state, binding)),
      this.options,
    );
    try {
      await this.lock.run(async () => {
        const current = await this.readLocked();
        const unchanged =
          current.snapshot.identity === start.snapshot.identity && current.journal?.id === binding.folded_id;
        if (!unchanged || current.journal === undefined || current.needsCheckpoint) return;
        const from = start.journal?.offset ?? 0;
        // The lines written meanwhile, without the reserve after them.
        const tail = await readFrom(
          this.options.fileSystem,
          this.journalPath,
          from,
          current.journal.offset - from,
        );
        const carried = tail?.data;
        await this.installCheckpoint(current, prepared, binding, carried ?? Buffer.alloc(0), current.state);
      });
    } finally {
      // When the checkpoint was abandoned (another process made one first).
      await discardFile(this.options.fileSystem, prepared);
    }
  }

  /**
   * Under the lock: makes `state` the snapshot, with a new journal that holds `carried` (lines
   * that lead from `state` to `after`), or nothing.
   */
  private async checkpointLocked(
    current: View,
    state: StoredState,
    carried: { lines: Buffer; after: StoredState } = { lines: Buffer.alloc(0), after: state },
  ): Promise<void> {
    const binding: JournalBinding = { id: randomUUID() };
    if (current.journal) {
      binding.folded_id = current.journal.id;
      binding.folded_offset = current.journal.offset;
    }
    const prepared = await prepareFile(
      this.options.fileSystem,
      this.metricsPath,
      snapshotPieces(withBinding(state, binding)),
      this.options,
    );
    await this.installCheckpoint(current, prepared, binding, carried.lines, carried.after);
  }

  /**
   * The renames of a checkpoint, in the one order that is safe at every step: the new journal is
   * durable before anything is renamed; the snapshot is renamed (and its folder fsynced) before
   * the journal, so a crash in between leaves the new snapshot with the old journal, which it
   * names in `folded_id` and continues correctly.
   */
  private async installCheckpoint(
    current: View,
    snapshot: PreparedFile,
    binding: JournalBinding,
    carried: Buffer,
    state: StoredState,
  ): Promise<void> {
    const fileSystem = this.options.fileSystem;
    try {
      await sweepTempFiles(fileSystem, this.dir, this.ownFiles());
      const folded = binding.folded_id;
      const header = encodeHeader(
        binding.id,
        folded === undefined ? undefined : { id: folded, offset: binding.folded_offset ?? 0 },
      );
      const journal = await prepareFile(fileSystem, this.journalPath, [header, carried], this.options);
      try {
        await this.backupCurrentMain(current.snapshot.identity);
        // The folded journal goes with the .bak it continues: together they rebuild the new
        // snapshot if it is ever found corrupt (the new journal's header says where to stop).
        if (current.journal) await this.linkAsBackup(this.journalPath, this.journalBackupPath);
        // From here until the journal is renamed too, the files on disk are consistent (the new
        // snapshot continues with the old journal) but this view is not: forget it meanwhile.
        this.view = undefined;
        const snapshotStat = await commitFile(fileSystem, snapshot, this.options).catch(async (error) => {
          // Renamed in, but its folder fsync failed (`committed`): the journal goes in too, so
          // that the lines it carries (a write's own, see `commitBatch`) are in place as that
          // error says. Unless its own rename fails: then they are not, and its error says so.
          if (!(error instanceof StorageIOError && error.committed)) throw error;
          await commitFile(fileSystem, journal, this.options).catch((journalError) => {
            if (!(journalError instanceof StorageIOError && journalError.committed)) throw journalError;
          });
          throw error;
        });
        const journalStat = await commitFile(fileSystem, journal, this.options).catch((error) => {
          // The snapshot is in place, and with the old journal, which it names, the files hold
          // what this checkpoint wrote. With no lines carried that is everything (a save's or a
          // first write's change): `committed`, or the caller's retry would apply it twice.
          if (carried.length > 0 || !(error instanceof StorageIOError) || error.committed) throw error;
          const durable = this.options.durability === 'fsync' ? ' and durable' : '';
          const previous = current.journal ? ', with the previous journal, which it names' : '';
          throw new StorageIOError(
            error.operation,
            error.path,
            error.cause,
            true,
            `the change is written: the new state file is in place${durable}${previous}`,
          );
        });
        // The kept descriptor names the replaced journal now.
        await this.appender.close();
        this.keepView({
          state,
          snapshot: { identity: identityOf(snapshotStat), size: snapshotStat.size, binding },
          journal: {
            id: binding.id,
            inode: inodeOf(journalStat),
            headerEnd: header.length,
            offset: header.length + carried.length,
            size: journalStat.size,
          },
          needsCheckpoint: false,
        });
        // Lines whose fdatasync failed are in the new files now, written and fsynced anew; and a
        // batch appended from here on builds on nothing still waiting for its fdatasync.
        this.syncFailed = false;
        this.reserveFailed = false;
        this.lastAppended = undefined;
      } finally {
        await discardFile(fileSystem, journal);
      }
    } catch (error) {
      this.view = undefined;
      this.sweepNeeded = true;
      throw error;
    } finally {
      // Gone already when it was renamed in place; left behind only when the checkpoint failed.
      await discardFile(fileSystem, snapshot);
    }
  }

  /**
   * Makes the current main file the `.bak` by hard-linking it (no re-read, no re-parse), unless
   * it is not the file this instance read: then it is checked once, and a corrupt one is moved
   * aside instead, so a corrupt main neither fails the save nor replaces a good backup.
   */
  private async backupCurrentMain(knownValid: string | undefined): Promise<void> {
    const fileSystem = this.options.fileSystem;
    let current: FileStat;
    try {
      current = await fileSystem.stat(this.metricsPath);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw new StorageIOError('stat', this.metricsPath, error);
    }
    if (identityOf(current) !== knownValid) {
      const main = await readGeneration(fileSystem, this.metricsPath);
      if (main.kind === 'missing') return;
      if (main.kind === 'invalid') {
        const quarantinedPath = await quarantine(fileSystem, this.metricsPath);
        this.notify({ action: 'quarantined-before-save', reason: main.reason, quarantinedPath });
        return;
      }
    }
    await this.linkAsBackup(this.metricsPath, this.backupPath);
  }

  /**
   * Makes `backup` another name of `path` (a hard link; a copy where links are not supported).
   * What fails is E_IO (`StorageIOError` 'backup'), for the main file's backup and the journal's.
   */
  private async linkAsBackup(path: string, backup: string): Promise<void> {
    try {
      await this.linkAsBackupUnwrapped(path, backup);
    } catch (error) {
      throw error instanceof MetricsError ? error : new StorageIOError('backup', backup, error);
    }
  }

  private async linkAsBackupUnwrapped(path: string, backup: string): Promise<void> {
    const fileSystem = this.options.fileSystem;
    const [source, existing] = await Promise.all([
      fileSystem.stat(path),
      fileSystem.stat(backup).catch(() => undefined),
    ]);
    // After a write that failed past this step, the backup already is this very file; a rename
    // between two links of one inode does nothing and would leave the temp link behind.
    if (existing && existing.ino === source.ino && existing.dev === source.dev) return;
    const temp = tempPathFor(backup);
    try {
      await fileSystem.link(path, temp);
    } catch (error) {
      if (!LINK_UNSUPPORTED.has(errnoCode(error) ?? '')) throw error;
      const { data } = await fileSystem.readFile(path);
      await commitFile(fileSystem, await prepareFile(fileSystem, backup, data, this.options), this.options);
      return;
    }
    try {
      await fileSystem.rename(temp, backup);
    } catch (error) {
      await fileSystem.unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Resolves once queued updates are answered and a running background checkpoint is done. */
  private async settle(): Promise<void> {
    while (this.flushing || this.checkpointing || this.answering.size > 0) {
      await this.flushing;
      await this.checkpointing;
      await Promise.all(this.answering);
    }
  }

  /** The files whose temp files the sweep removes. */
  private ownFiles(): string[] {
    return [this.metricsPath, this.backupPath, this.journalPath, this.journalBackupPath];
  }

  private freshState(): DashboardState {
    return createEmptyState(this.options.projectName);
  }

  private assertValid(state: DashboardState): void {
    const issues = [...validateState(state), ...uncheckedProfileIssues(state)];
    if (issues.length > 0) throw new StateValidationError(issues);
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
    return (await this.statOrUndefined(path)) !== undefined;
  }

  private async statOrUndefined(path: string): Promise<FileStat | undefined> {
    try {
      return await this.options.fileSystem.stat(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
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
