import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createEmptyState,
  type DashboardState,
  METRICS_FILE,
  MetricsStore,
  RETENTION_KEY,
} from '../../src/index.js';
import { recordEvent } from '../../src/model/record-event.js';
import { makeEvent } from '../helpers/builders.js';
import { tempDir } from '../helpers/temp-dir.js';
import { readState, run } from './helpers.js';

function addEvents(state: DashboardState, count: number): DashboardState {
  for (let index = 0; index < count; index++) recordEvent(state, makeEvent({ event_id: `evt-${index}` }));
  return state;
}

/** A project saved by an app whose store keeps 800 events, holding 700. */
async function projectWithRetention800(): Promise<string> {
  const dir = tempDir();
  const store = new MetricsStore({ projectName: 'big', dir, maxEvents: 800, durability: 'none' });
  await store.update((state) => {
    addEvents(state, 700);
  });
  return dir;
}

/** A project file written without `retention` (e.g. by the Python implementation). */
function projectWithoutRetention(events: number): string {
  const dir = tempDir();
  writeFileSync(join(dir, METRICS_FILE), JSON.stringify(addEvents(createEmptyState('plain'), events)));
  return dir;
}

describe('caps', () => {
  it('record never cuts a project down to the default caps: it follows the caps recorded in the file', async () => {
    const dir = await projectWithRetention800();
    expect(readState(dir).events).toHaveLength(700);
    const { code } = await run(['record', '--dir', dir, '--agent', 'hook']);
    expect(code).toBe(0);
    const state = readState(dir);
    expect(state.events).toHaveLength(701);
    expect(state.events.at(-1)?.agent_name).toBe('hook');
    expect(state[RETENTION_KEY]).toEqual({ max_events: 800, max_sessions: 50 });
  });

  it("verify checks against the file's recorded caps when none are given", async () => {
    const dir = await projectWithRetention800();
    const { code, stdout } = await run(['verify', '--dir', dir, '--json']);
    expect(JSON.parse(stdout).files[0]).toMatchObject({ status: 'valid', issues: [] });
    expect(code).toBe(0);
  });

  it('verify checks against the default caps when the file records none', async () => {
    const within = await run(['verify', '--dir', projectWithoutRetention(500), '--json']);
    expect(within.code).toBe(0);
    const over = await run(['verify', '--dir', projectWithoutRetention(501), '--json']);
    expect(over.code).toBe(1);
    expect(JSON.parse(over.stdout).files[0].issues.map((issue: { path: string }) => issue.path)).toEqual([
      'events',
    ]);
  });

  it("verify --max-events overrides the file's caps", async () => {
    const dir = await projectWithRetention800();
    const { code, stdout } = await run(['verify', '--dir', dir, '--max-events', '600']);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^ {2}main: events: .*600/m);
  });
});
