/**
 * Every error this library throws is a `MetricsError` with a stable `code`. Callers (and the CLI)
 * branch on `code`, never on message text; the underlying error, if any, rides along as `cause`.
 */
export type MetricsErrorCode =
  | 'E_LOCK_TIMEOUT'
  | 'E_INVALID_STATE'
  | 'E_INVALID_INPUT'
  | 'E_INVALID_OPTIONS'
  | 'E_IO'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_INTERNAL';

export class MetricsError extends Error {
  readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsError';
    this.code = code;
  }
}

/** The cross-process lock could not be taken within `lockTimeoutMs`. */
export class LockAcquisitionError extends MetricsError {
  readonly lockPath: string;
  readonly timeoutMs: number;
  /** Process id written by the current holder, when it is one of ours and could be read. */
  readonly holderPid: number | undefined;

  constructor(lockPath: string, timeoutMs: number, holderPid?: number) {
    const holder = holderPid === undefined ? 'unknown holder' : `held by pid ${holderPid}`;
    super('E_LOCK_TIMEOUT', `could not acquire ${lockPath} within ${timeoutMs} ms (${holder})`);
    this.name = 'LockAcquisitionError';
    this.lockPath = lockPath;
    this.timeoutMs = timeoutMs;
    this.holderPid = holderPid;
  }
}

/** One problem found by validation: `path` is like `events[3].status`. */
export interface ValidationIssue {
  path: string;
  message: string;
}

function describeIssues(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 10).map((issue) => `${issue.path}: ${issue.message}`);
  const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '';
  return shown.join('; ') + more;
}

/** A state (to save, or read from disk) does not match the file format. Nothing was written. */
export class StateValidationError extends MetricsError {
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[], what = 'invalid state') {
    super('E_INVALID_STATE', `${what}: ${describeIssues(issues)}`);
    this.name = 'StateValidationError';
    this.issues = issues;
  }

  /** The bad paths alone, e.g. `['events[3].status']`. */
  get paths(): string[] {
    return this.issues.map((issue) => issue.path);
  }
}

/** Input to the domain API (an event, a session call) is invalid. Nothing was written. */
export class InvalidInputError extends MetricsError {
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[]) {
    super('E_INVALID_INPUT', `invalid input: ${describeIssues(issues)}`);
    this.name = 'InvalidInputError';
    this.issues = issues;
  }
}

/** A file-system operation failed. `operation` names the step (e.g. `fsync`), `path` the file. */
export class StorageIOError extends MetricsError {
  readonly operation: string;
  readonly path: string;
  /**
   * True when the failure came after the new file replaced the old one (the folder fsync): the
   * write is visible and will be read back, but may not survive a power cut. Do not retry a
   * non-idempotent change (such as recording an event) on such an error: it would count twice.
   */
  readonly committed: boolean;

  /** `committedAs`: what is in place, when not the file that failed (said instead of the usual note). */
  constructor(operation: string, path: string, cause: unknown, committed = false, committedAs?: string) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const note = !committed
      ? ''
      : committedAs !== undefined
        ? ` (${committedAs})`
        : ' (the new file is in place, but may not survive a power cut)';
    super('E_IO', `${operation} failed for ${path}: ${reason}${note}`, { cause });
    this.name = 'StorageIOError';
    this.operation = operation;
    this.path = path;
    this.committed = committed;
  }
}

/** The errno-style code of a Node error (`ENOENT`, …), if it has one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error as { code: unknown };
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
