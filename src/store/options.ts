import { resolve } from 'node:path';
import * as v from 'valibot';
import { MetricsError } from '../errors.js';
import { DEFAULT_WORDING, describeIssues, enumOf, integer, objectOnly, safeParse } from '../model/schema.js';
import type { Durability } from './atomic-write.js';
import { type FileSystem, nodeFileSystem } from './file-system.js';
import type { RecoveryReport } from './recovery.js';

export interface MetricsStoreOptions {
  /** Name of the project, written to `project_name` of a new state. Required. */
  projectName: string;
  /**
   * Folder that holds `.agent_metrics.json` and its companions; created on first write.
   * @default process.cwd()
   */
  dir?: string;
  /**
   * Events kept in the file (oldest evicted first). Counters are lifetime sums and never drop.
   * Explicit caps are recorded in the file (root key `retention`); a store created without caps
   * follows the file's, so a hook with default options never cuts a project down.
   * @default the file's `retention`, else 500
   */
  maxEvents?: number;
  /**
   * Finished sessions kept in the file (oldest evicted first); recorded like `maxEvents`.
   * @default the file's `retention`, else 50
   */
  maxSessions?: number;
  /**
   * How long a write waits for the lock before it fails with `LockAcquisitionError`.
   * @default 10000
   */
  lockTimeoutMs?: number;
  /**
   * How long this store may keep the lock from one write to the next while another process waits
   * for it. A write that comes before the event loop turns (a caller writing again as soon as its
   * last write is answered, or callers waiting in a batch) then skips taking the lock and reading
   * what others wrote; when the lease has lasted this long and another process waits, the lock
   * goes to it. While nobody waits, the lease is renewed. Once another process has wanted the
   * lock, none is kept for a second (processes taking turns do better without). 0 releases the
   * lock after every write.
   * @default 4
   */
  lockLeaseMs?: number;
  /**
   * How a write waits for a lock another process holds. `'block'`: in flock(2), on a thread of
   * libuv's pool; the kernel hands the lock over the moment it is released. But such a wait
   * cannot be cancelled: after `lockTimeoutMs` the write fails, yet the waiting thread stays
   * until the holder lets go, and the process cannot exit before (a stuck holder keeps it
   * forever). `'poll'`: tries the lock every 1–16 ms, and leaves a mark in the lock file so that
   * a holder under a lease gives it up as it does to a blocked waiter; nothing is left waiting
   * after the timeout. For short-lived processes that must end on time (the command-line tool,
   * hooks).
   * @default 'block'
   */
  lockWait?: 'block' | 'poll';
  /**
   * Permissions of the files the store creates.
   * @default 0o600
   */
  fileMode?: number;
  /**
   * `'fsync'`: a write resolves once it is on disk. `'none'`: no fsync; atomic and safe against a
   * crash of the process, but an OS crash or power cut may lose the last acknowledged writes.
   * @default 'fsync'
   */
  durability?: Durability;
  /**
   * Changes are appended to a journal (`.agent_metrics.journal`) and folded into
   * `.agent_metrics.json` at checkpoints. A checkpoint starts once the journal holds this many
   * bytes, or as many bytes as the JSON file, whichever is more (so the cost of checkpoints per
   * change stays flat as the state grows). It runs in the background; writes go on meanwhile.
   * @default 4194304 (4 MiB)
   */
  checkpointBytes?: number;
  /**
   * A checkpoint also starts when this store has written nothing for this long, so that readers of
   * the JSON file alone (the Python dashboard) see recent changes. 0 disables it.
   * @default 1000
   */
  checkpointIdleMs?: number;
  /**
   * Told what recovery did and why, whenever a corrupt or missing main file was replaced.
   * @default undefined (no callback)
   */
  onRecover?: (report: RecoveryReport) => void;
  /**
   * The file-system layer. Tests inject faults through it; everyone else keeps the default.
   * @default the real file system (node:fs and flock)
   */
  fileSystem?: FileSystem;
}

export interface ResolvedStoreOptions {
  projectName: string;
  dir: string;
  /** Undefined when not given: the file's `retention` or the default applies. */
  maxEvents: number | undefined;
  maxSessions: number | undefined;
  lockTimeoutMs: number;
  lockLeaseMs: number;
  lockWait: 'block' | 'poll';
  fileMode: number;
  durability: Durability;
  checkpointBytes: number;
  checkpointIdleMs: number;
  onRecover: ((report: RecoveryReport) => void) | undefined;
  fileSystem: FileSystem;
}

/** The longest delay a Node.js timer takes: a longer one fires at once (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// Strict: a misspelled option (`lockTimeout`) is an error, not silently ignored.
const optionsSchema = objectOnly(
  v.strictObject({
    projectName: v.pipe(v.string(), v.minLength(1)),
    dir: v.optional(v.pipe(v.string(), v.minLength(1))),
    maxEvents: v.optional(v.pipe(integer, v.minValue(1))),
    maxSessions: v.optional(v.pipe(integer, v.minValue(1))),
    lockTimeoutMs: v.optional(v.pipe(integer, v.minValue(0), v.maxValue(MAX_TIMER_MS))),
    lockLeaseMs: v.optional(v.pipe(integer, v.minValue(0), v.maxValue(60_000))),
    lockWait: v.optional(enumOf(['block', 'poll'])),
    fileMode: v.optional(v.pipe(integer, v.minValue(0), v.maxValue(0o7777))),
    durability: v.optional(enumOf(['fsync', 'none'])),
    checkpointBytes: v.optional(v.pipe(integer, v.minValue(0))),
    checkpointIdleMs: v.optional(v.pipe(integer, v.minValue(0), v.maxValue(MAX_TIMER_MS))),
    onRecover: v.optional(v.function()),
    fileSystem: v.optional(objectOnly(v.looseObject({}))),
  }),
);

const WORDING = { ...DEFAULT_WORDING, unknown: 'unknown option' };

/** Applies the defaults in one place; never mutates the caller's object. */
export function resolveStoreOptions(options: MetricsStoreOptions): ResolvedStoreOptions {
  const parsed = safeParse(optionsSchema, options);
  if (!parsed.success) {
    const problems = describeIssues(optionsSchema, parsed.issues, [], WORDING).map(
      (issue) => `${issue.path}: ${issue.message}`,
    );
    throw new MetricsError('E_INVALID_OPTIONS', `invalid MetricsStore options: ${problems.join('; ')}`);
  }
  return {
    projectName: options.projectName,
    dir: resolve(options.dir ?? process.cwd()),
    maxEvents: options.maxEvents,
    maxSessions: options.maxSessions,
    lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
    lockLeaseMs: options.lockLeaseMs ?? 4,
    lockWait: options.lockWait ?? 'block',
    fileMode: options.fileMode ?? 0o600,
    durability: options.durability ?? 'fsync',
    checkpointBytes: options.checkpointBytes ?? 4 * 1024 * 1024,
    checkpointIdleMs: options.checkpointIdleMs ?? 1000,
    onRecover: options.onRecover,
    fileSystem: options.fileSystem ?? nodeFileSystem,
  };
}
