import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

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
});
