import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LockAcquisitionError, MetricsError, StorageIOError } from '../../src/errors.js';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { createEmptyState } from '../../src/model/state.js';
import type { MetricsBackend } from '../../src/store/backend.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { metricsIn } from './helpers.js';

const EVENT = { agentName: 'coding', status: 'success', inputTokens: 10 } as const;

/** Holds the lock of `dir` from another store until `release()` is called. */
async function holdLock(dir: string) {
  const holder = new MetricsStore({ projectName: 'demo', dir });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const done = holder.update(async () => {
    entered();
    await released;
  });
  await inside;
  return async () => {
    release();
    await done;
  };
}

describe('failure tolerance', () => {
  it('lock timeout: strict false reports E_LOCK_TIMEOUT to onError and resolves to undefined', async () => {
    const { metrics, errors, dir } = metricsIn({ lockTimeoutMs: 50 });
    const release = await holdLock(dir);
    try {
      expect(await metrics.recordEvent(EVENT)).toBeUndefined();
      expect(await metrics.endSession('some-session', 'complete')).toBeUndefined();
      const id = await metrics.startSession({ type: 'initializer', sessionId: 'mine' });
      expect(id).toBe('mine');
    } finally {
      await release();
    }
    expect(errors.map((e) => e.code)).toEqual(['E_LOCK_TIMEOUT', 'E_LOCK_TIMEOUT', 'E_LOCK_TIMEOUT']);
    expect(errors[0]).toBeInstanceOf(LockAcquisitionError);
    // Nothing was recorded, and the session that could not be started is unknown afterwards.
    expect((await metrics.getState()).events).toEqual([]);
    expect(await metrics.endSession('mine', 'complete')).toBeUndefined();
    expect(errors.at(-1)?.code).toBe('E_NOT_FOUND');
  });

  it('lock timeout: strict true throws LockAcquisitionError', async () => {
    const { metrics, errors, dir } = metricsIn({ lockTimeoutMs: 50, strict: true });
    const release = await holdLock(dir);
    try {
      await expect(metrics.recordEvent(EVENT)).rejects.toBeInstanceOf(LockAcquisitionError);
    } finally {
      await release();
    }
    expect(errors).toEqual([]);
  });

  it('I/O failure: onError gets E_IO and the file keeps the previous state', async () => {
    const faulty = new FaultyFileSystem();
    const { metrics, errors, dir } = metricsIn({ fileSystem: faulty.fs, durability: 'fsync' });
    const first = await metrics.recordEvent(EVENT);
    const before = readFileSync(join(dir, '.agent_metrics.json'), 'utf8');
    // The second event is a journal append: its write fails, and the append is cut off again.
    // (A failed fdatasync cannot be taken back: see test/store/sync-after-release.test.ts.)
    faulty.arm({ failAt: 1, code: 'EIO', persistent: true, methods: ['write'] });
    expect(await metrics.recordEvent(EVENT)).toBeUndefined();
    expect(faulty.injected).toBeGreaterThan(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StorageIOError);
    expect(errors[0]?.code).toBe('E_IO');
    expect(readFileSync(join(dir, '.agent_metrics.json'), 'utf8')).toBe(before);
    faulty.arm(undefined);
    expect((await metrics.getState()).events.map((e) => e.event_id)).toEqual([first?.event_id]);
  });

  it('I/O failure: strict true throws the coded error', async () => {
    const faulty = new FaultyFileSystem();
    const { metrics } = metricsIn({ fileSystem: faulty.fs, strict: true });
    faulty.arm({ failAt: 1, code: 'ENOSPC', persistent: true, methods: ['write'] });
    await expect(metrics.startSession()).rejects.toMatchObject({ code: 'E_IO' });
  });

  it('unknown and already-ended sessions are clear errors (E_NOT_FOUND, E_CONFLICT)', async () => {
    const { metrics, errors } = metricsIn();
    const id = await metrics.startSession();
    await metrics.endSession(id, 'continue');
    expect(await metrics.endSession(id, 'complete')).toBeUndefined();
    expect(await metrics.endSession('nope')).toBeUndefined();
    expect(errors.map((e) => e.code)).toEqual(['E_CONFLICT', 'E_NOT_FOUND']);
    expect(errors[1]?.message).toContain('nope');
    const strict = metricsIn({ strict: true, dir: metricsIn().dir });
    await expect(strict.metrics.endSession('nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('a starting session with an id in use is E_CONFLICT, and the first session is untouched', async () => {
    const { metrics, errors } = metricsIn();
    await metrics.startSession({ sessionId: 'loop-1', type: 'initializer' });
    expect(await metrics.startSession({ sessionId: 'loop-1' })).toBe('loop-1');
    expect(errors.map((e) => e.code)).toEqual(['E_CONFLICT']);
    expect((await metrics.getOpenSessions()).map((s) => s.session_type)).toEqual(['initializer']);
  });

  it('wraps an uncoded failure: E_IO for an errno-style error, E_INTERNAL for anything else', async () => {
    const errors: MetricsError[] = [];
    const failingWith = (cause: unknown) =>
      new AgentMetrics({
        store: {
          projectName: 'demo',
          load: async () => createEmptyState('demo'),
          update: () => Promise.reject(cause),
        },
        onError: (e) => errors.push(e),
      }).recordEvent(EVENT);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104 });
    const dns = Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN' });
    const bug = new TypeError("Cannot read properties of undefined (reading 'agents')");
    const misuse = Object.assign(new TypeError('bad argument'), { code: 'ERR_INVALID_ARG_TYPE' });
    for (const cause of [reset, dns, bug, misuse, 'plain string']) {
      expect(await failingWith(cause)).toBeUndefined();
    }
    expect(errors.every((error) => error instanceof MetricsError)).toBe(true);
    expect(errors.map((e) => [e.code, e.message, e.cause])).toEqual([
      ['E_IO', 'recording failed: read ECONNRESET', reset],
      ['E_IO', 'recording failed: getaddrinfo EAI_AGAIN db', dns],
      ['E_INTERNAL', `recording failed on an unexpected error: ${bug.message}`, bug],
      ['E_INTERNAL', 'recording failed on an unexpected error: bad argument', misuse],
      ['E_INTERNAL', 'recording failed on an unexpected error: plain string', 'plain string'],
    ]);
  });

  it('an onError callback that throws does not crash the caller', async () => {
    const { metrics } = metricsIn({
      onError: () => {
        throw new Error('bad callback');
      },
    });
    expect(await metrics.recordEvent({ ...EVENT, inputTokens: -1 })).toBeUndefined();
  });

  it('an async onError whose promise rejects does not crash the host process', async () => {
    // A real process: Node exits on an unhandled rejection, which a test runner would intercept.
    const script = `
      import { AgentMetrics } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'dist/index.js')).href)};
      const metrics = new AgentMetrics({
        projectName: 'demo',
        dir: ${JSON.stringify(tempDir())},
        onError: async (error) => {
          console.log('reported ' + error.code);
          throw new Error('async callback failed');
        },
      });
      await metrics.recordEvent({ agentName: 'coding', status: 'success', inputTokens: -1 });
      // The rejection is reported (or not) when the microtask queue drains, before any timer.
      setTimeout(() => console.log('alive'), 0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).not.toContain('async callback failed');
    expect([child.status, child.stdout]).toEqual([0, 'reported E_INVALID_INPUT\nalive\n']);
  });

  it('without onError, a failure becomes a process warning with its code', async () => {
    const metrics = new AgentMetrics({ projectName: 'demo', dir: tempDir() });
    const warning = once(process, 'warning');
    expect(await metrics.recordEvent({ ...EVENT, status: 'fine' as never })).toBeUndefined();
    const [emitted] = (await warning) as [Error & { code?: string }];
    expect(emitted.name).toBe('AgentMetricsWarning');
    expect(emitted.code).toBe('E_INVALID_INPUT');
    expect(emitted.message).toContain("status: expected one of 'success', 'error', 'timeout', 'blocked'");
  });

  it('reads throw whatever strict says', async () => {
    const backend: MetricsBackend = {
      projectName: 'demo',
      load: () => Promise.reject(new MetricsError('E_IO', 'unreadable')),
      update: () => Promise.reject(new MetricsError('E_IO', 'unwritable')),
    };
    const metrics = new AgentMetrics({ store: backend, onError: () => undefined });
    await expect(metrics.getState()).rejects.toThrow('unreadable');
    await expect(metrics.getLeaderboard()).rejects.toThrow('unreadable');
  });
});
