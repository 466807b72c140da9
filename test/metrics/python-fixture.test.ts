import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/model/invariants.js';
import { validateState } from '../../src/model/schema.js';
import type { DashboardState } from '../../src/model/types.js';
import { readJson } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { metricsIn } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/python-written/.agent_metrics.json', import.meta.url));

describe('recording into a file the Python implementation wrote', () => {
  it('continues its counters, session numbers and kept fields', async () => {
    const dir = tempDir();
    copyFileSync(FIXTURE, join(dir, '.agent_metrics.json'));
    const before = readJson(FIXTURE) as unknown as DashboardState;
    const { metrics, errors } = metricsIn({ dir, strict: true });

    const sessionId = await metrics.startSession({ type: 'continuation' });
    await metrics.recordEvent({
      agentName: 'github',
      sessionId,
      ticketKey: 'AI-200',
      model: 'claude-haiku-4-5',
      status: 'success',
      inputTokens: 1000,
      outputTokens: 100,
      durationSeconds: 10,
      artifacts: ['pr:#43'],
    });
    const summary = await metrics.endSession(sessionId, 'continue');
    await metrics.close(); // fold the journal into the JSON file the Python side reads

    const after = readJson(join(dir, '.agent_metrics.json')) as unknown as DashboardState;
    expect(validateState(after)).toEqual([]);
    expect(checkInvariants(after)).toEqual([]);
    expect(summary?.session_number).toBe(before.total_sessions + 1);
    expect(after.total_sessions).toBe(before.total_sessions + 1);
    expect(after.total_tokens).toBe(before.total_tokens + 1100);
    expect(after.total_cost_usd).toBeCloseTo(before.total_cost_usd + 0.0015, 12);
    const was = before.agents.github;
    expect(after.agents.github).toMatchObject({
      xp: was?.xp,
      level: was?.level,
      achievements: was?.achievements,
      total_invocations: (was?.total_invocations ?? 0) + 1,
      prs_created: (was?.prs_created ?? 0) + 1,
      current_streak: (was?.current_streak ?? 0) + 1,
      last_error: was?.last_error,
    });
    expect(after.agents.coding).toEqual(before.agents.coding);
    expect(after.sessions.slice(0, -1)).toEqual(before.sessions);
    expect(errors).toEqual([]);
  });
});
