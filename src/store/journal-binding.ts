import type { DashboardState } from '../model/types.js';

/**
 * Root key of the snapshot (`.agent_metrics.json`) naming the journal that continues it. The
 * Python loader ignores it, like every extra root key. The store strips it from the states it
 * hands out and writes it back at each checkpoint.
 */
export const JOURNAL_BINDING_KEY = 'agent_metrics_journal';

/**
 * - `id`: the journal whose every line applies on top of this snapshot.
 * - `folded_id` / `folded_offset`: the journal this snapshot replaced, and how much of it the
 *   snapshot already holds. A crash between the two renames of a checkpoint can leave that older
 *   journal in place; its lines after `folded_offset` still apply.
 */
export interface JournalBinding {
  id: string;
  folded_id?: string;
  folded_offset?: number;
}

function isBinding(value: unknown): value is JournalBinding {
  if (typeof value !== 'object' || value === null) return false;
  const { id, folded_id, folded_offset } = value as Record<string, unknown>;
  return (
    typeof id === 'string' &&
    (folded_id === undefined || typeof folded_id === 'string') &&
    (folded_offset === undefined || (Number.isSafeInteger(folded_offset) && (folded_offset as number) >= 0))
  );
}

/** Removes the binding from a freshly parsed snapshot and returns it (undefined when absent or malformed). */
export function takeBinding(state: DashboardState): JournalBinding | undefined {
  const value = state[JOURNAL_BINDING_KEY];
  delete state[JOURNAL_BINDING_KEY];
  return isBinding(value) ? value : undefined;
}

/** `state` with the binding as its last root key (a shallow copy; `state` is not modified). */
export function withBinding<S extends object>(state: S, binding: JournalBinding): S {
  const { [JOURNAL_BINDING_KEY]: _old, ...rest } = state as Record<string, unknown>;
  return { ...rest, [JOURNAL_BINDING_KEY]: binding } as S;
}

/**
 * Where replay of a journal with header `journalId` starts for a snapshot bound by `binding`:
 * after the header when it is the snapshot's journal, at `folded_offset` when it is the one the
 * snapshot replaced, undefined when it belongs to neither.
 */
export function replayStart(
  binding: JournalBinding | undefined,
  journalId: string,
  headerEnd: number,
): number | undefined {
  if (binding === undefined) return undefined;
  if (binding.id === journalId) return headerEnd;
  if (binding.folded_id === journalId) return Math.max(headerEnd, binding.folded_offset ?? headerEnd);
  return undefined;
}
