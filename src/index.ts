export {
  InvalidInputError,
  LockAcquisitionError,
  MetricsError,
  type MetricsErrorCode,
  StateValidationError,
  StorageIOError,
  type ValidationIssue,
} from './errors.js';
export { validateState } from './model/schema.js';
export { applyFifoEviction, createEmptyState } from './model/state.js';
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
export type { Durability } from './store/atomic-write.js';
export type { MetricsBackend, StateMutator } from './store/backend.js';
export type { FileStat, FileSystem, OpenMode } from './store/file-system.js';
export { MAX_POLL_MS as LOCK_MAX_POLL_MS } from './store/lock.js';
export { MetricsStore, type StoreStats } from './store/metrics-store.js';
export type { MetricsStoreOptions } from './store/options.js';
export type { RecoveryReport } from './store/recovery.js';
