export {
  InvalidInputError,
  LockAcquisitionError,
  MetricsError,
  type MetricsErrorCode,
  StateValidationError,
  StorageIOError,
  type ValidationIssue,
} from './errors.js';
export { AgentMetrics, type TrackContext } from './metrics/agent-metrics.js';
export {
  type EndSessionInput,
  type EventInput,
  MAX_TOKENS_PER_CALL,
  type SessionInput,
  type TimeInput,
} from './metrics/inputs.js';
export type { AgentMetricsOptions, AgentMetricsSettings } from './metrics/options.js';
export { AgentTracker } from './metrics/tracker.js';
export {
  ARTIFACT_RULES,
  type ArtifactRule,
  CONTRIBUTION_COUNTERS,
  type Contribution,
  type ContributionCounter,
  contributionsOf,
  parseArtifact,
} from './model/artifacts.js';
export { checkInvariants, type InvariantOptions } from './model/invariants.js';
export {
  costOf,
  DEFAULT_MODEL_PRICES,
  type ModelPrice,
  priceOf,
  UNKNOWN_MODEL_PRICE,
} from './model/pricing.js';
export { validateState } from './model/schema.js';
export { OPEN_SESSIONS_KEY, type OpenSession } from './model/sessions.js';
export {
  applyFifoEviction,
  type Caps,
  capsFor,
  createEmptyState,
  DEFAULT_CAPS,
  RETENTION_KEY,
} from './model/state.js';
export {
  type AgentEvent,
  type AgentProfile,
  type DashboardState,
  EVENT_STATUSES,
  type EventStatus,
  SESSION_STATUSES,
  SESSION_TYPES,
  type SessionStatus,
  type SessionSummary,
  type SessionType,
} from './model/types.js';
export { appendRecord } from './model/working-copy.js';
export {
  type AtomicWriteOptions,
  type Durability,
  isLeftoverTempFile,
  writeFileAtomic,
} from './store/atomic-write.js';
export type { MetricsBackend, StateMutator } from './store/backend.js';
export { type FileStat, type FileSystem, nodeFileSystem, type OpenMode } from './store/file-system.js';
export { checkJournal, type JournalCheck, withJournal } from './store/journal-check.js';
export { MAX_POLL_MS as LOCK_MAX_POLL_MS } from './store/lock.js';
export { MemoryBackend } from './store/memory-backend.js';
export {
  BACKUP_FILE,
  JOURNAL_BACKUP_FILE,
  JOURNAL_FILE,
  METRICS_FILE,
  MetricsStore,
  type StoreStats,
} from './store/metrics-store.js';
export { MAX_TIMER_MS, type MetricsStoreOptions } from './store/options.js';
export {
  type Generation,
  type ParsedStateFile,
  parseStateFile,
  quarantine,
  type RecoveryReport,
  readGeneration,
} from './store/recovery.js';
