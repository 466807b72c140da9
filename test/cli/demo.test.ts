import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { demoHistory } from '../../src/cli/commands/demo-history.js';
import { checkInvariants, nodeFileSystem, validateState } from '../../src/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { readState, run, snapshot } from './helpers.js';

/** The parts of a state that do not depend on the wall clock or on random ids. */
function stable(dir: string) {
  const { events, sessions, agents, total_tokens, total_cost_usd, total_sessions } = readState(dir);
  const withoutIds = events.map(({ event_id: _, ...rest }) => rest);
  const profiles = Object.values(agents).map(({ recent_events: _, ...rest }) => rest);
  return { withoutIds, sessions, profiles, total_tokens, total_cost_usd, total_sessions };
}

describe('demo', () => {
  it('fills a fresh folder with a valid, consistent multi-session, multi-agent history', async () => {
    const dir = join(tempDir(), 'demo');
    const { code, stdout } = await run(['demo', '--dir', dir]);
    expect(code).toBe(0);
    const state = readState(dir);
    expect(stdout).toMatch(
      new RegExp(
        `^recorded 8 sessions \\(1 still in progress\\) and ${state.events.length} events of 5 agents in ${dir}\n`,
      ),
    );
    expect(validateState(state)).toEqual([]);
    expect(checkInvariants(state)).toEqual([]);
    expect(state.project_name).toBe('demo-project');
    expect(Object.keys(state.agents).sort()).toEqual(['coding', 'github', 'linear', 'reviewer', 'slack']);
    expect(state.sessions).toHaveLength(7);
    expect(state.total_sessions).toBe(8);
    expect(new Set(state.events.map((event) => event.status))).toEqual(
      new Set(['success', 'error', 'timeout', 'blocked']),
    );
    expect(state.agents.coding?.commits_made).toBeGreaterThan(0);
    expect(state.agents.github?.prs_merged).toBeGreaterThan(0);
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });

  it('gives the same history for the same seed, and another for another seed', async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    await run(['demo', '--dir', a, '--seed', '7']);
    await run(['demo', '--dir', b, '--seed', '7']);
    await run(['demo', '--dir', c, '--seed', '8']);
    expect(stable(a)).toEqual(stable(b));
    expect(stable(a)).not.toEqual(stable(c));
    expect(demoHistory(3, 2)).toEqual(demoHistory(3, 2));
  });

  it('marks a session whose ticket never got past coding as error', () => {
    const seeds = Array.from({ length: 40 }, (_, seed) => demoHistory(seed));
    const statuses = new Set(seeds.flat().map((session) => session.end?.status));
    expect(statuses).toEqual(new Set(['continue', 'complete', 'error', undefined]));
  });

  it('refuses a folder that already holds a project unless --force, which adds to it', async () => {
    const dir = tempDir();
    await run(['record', '--dir', dir, '--agent', 'mine']);
    const before = snapshot(dir);
    const refused = await run(['demo', '--dir', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `error E_USAGE: --dir: ${dir} already holds a project; pick a fresh folder, or add --force`,
    );
    expect(snapshot(dir)).toEqual(before);
    const backupOnly = tempDir();
    writeFileSync(join(backupOnly, '.agent_metrics.json.bak'), 'x');
    expect((await run(['demo', '--dir', backupOnly])).code).toBe(2);

    expect((await run(['demo', '--dir', dir, '--force'])).code).toBe(0);
    const state = readState(dir);
    expect(state.agents.mine?.total_invocations).toBe(1);
    expect(state.agents.coding?.total_invocations).toBeGreaterThan(0);
    // Another seed adds another history (its sessions have their own ids); the same seed again
    // is refused by the first session, before anything is written.
    const codingOnce = state.agents.coding?.total_invocations as number;
    expect((await run(['demo', '--dir', dir, '--force', '--seed', '7'])).code).toBe(0);
    expect(readState(dir).agents.coding?.total_invocations).toBeGreaterThan(codingOnce);
    const afterTwo = snapshot(dir);
    const again = await run(['demo', '--dir', dir, '--force', '--seed', '7']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('error E_CONFLICT: session demo-7-session-01 already exists');
    const now = snapshot(dir);
    for (const name of ['.agent_metrics.json', '.agent_metrics.journal'])
      expect(now[name]).toBe(afterTwo[name]);
  });

  it('skips fsync only in a fresh folder: with --force, every write to an existing project is durable', async () => {
    const fsync = vi.spyOn(nodeFileSystem, 'fsync');
    const fdatasync = vi.spyOn(nodeFileSystem, 'fdatasync');
    try {
      expect((await run(['demo', '--dir', tempDir()])).code).toBe(0);
      expect(fsync).not.toHaveBeenCalled();
      expect(fdatasync).not.toHaveBeenCalled();

      const dir = tempDir();
      await run(['record', '--dir', dir, '--agent', 'mine']);
      fsync.mockClear();
      fdatasync.mockClear();
      expect((await run(['demo', '--dir', dir, '--force'])).code).toBe(0);
      const history = demoHistory(42);
      const writes = history.reduce(
        (sum, session) => sum + 1 + session.events.length + (session.end ? 1 : 0),
        0,
      );
      // Each durable write is one journal append and its fdatasync (the final checkpoint fsyncs).
      expect(fdatasync.mock.calls.length).toBeGreaterThanOrEqual(writes);
      expect(fsync.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      fsync.mockRestore();
      fdatasync.mockRestore();
    }
  });
});
