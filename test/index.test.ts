import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { makeEvent } from './helpers/builders.js';
import { tempDir } from './helpers/temp-dir.js';

describe('public API', () => {
  it('exports the store, the error classes with their codes, and the validators by name', () => {
    expect(typeof api.MetricsStore).toBe('function');
    expect(new api.LockAcquisitionError('/x', 5).code).toBe('E_LOCK_TIMEOUT');
    expect(new api.StateValidationError([{ path: 'a', message: 'b' }]).code).toBe('E_INVALID_STATE');
    expect(new api.StorageIOError('fsync', '/x', new Error('boom')).code).toBe('E_IO');
    expect(new api.LockAcquisitionError('/x', 5)).toBeInstanceOf(api.MetricsError);
    expect(api.validateState(api.createEmptyState('p'))).toEqual([]);
    expect(api.METRICS_FILE).toBe('.agent_metrics.json');
  });

  it('appendRecord appends to a stored list from a mutator without making the list', async () => {
    const dir = tempDir();
    const store = new api.MetricsStore({ projectName: 'p', dir, checkpointIdleMs: 0 });
    await store.update((state) => {
      state.events.push(makeEvent({ event_id: 'e1' }));
    });
    let listMade = true;
    await store.update((state) => {
      api.appendRecord(state, 'events', makeEvent({ event_id: 'e2' }));
      listMade = typeof Object.getOwnPropertyDescriptor(state, 'events')?.get !== 'function';
    });
    expect(listMade).toBe(false);
    const fresh = new api.MetricsStore({ projectName: 'p', dir });
    expect((await fresh.load()).events.map((event) => event.event_id)).toEqual(['e1', 'e2']);
    expect(api.JOURNAL_FILE).toBe('.agent_metrics.journal');
  });
});
