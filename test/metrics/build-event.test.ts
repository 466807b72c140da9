import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { buildEvent, CLOCK_SKEW_TOLERATED_MS, type Pricing } from '../../src/metrics/build-event.js';
import { type EventInput, MAX_TOKENS_PER_CALL } from '../../src/metrics/inputs.js';
import { parseArtifact } from '../../src/model/artifacts.js';
import { DEFAULT_MODEL_PRICES, UNKNOWN_MODEL_PRICE } from '../../src/model/pricing.js';
import { agentEventSchema, collectIssues } from '../../src/model/schema.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const PRICING: Pricing = { prices: DEFAULT_MODEL_PRICES, unknownModelPrice: UNKNOWN_MODEL_PRICE };
const build = (input: Partial<EventInput> | Record<string, unknown>) =>
  buildEvent({ agentName: 'coding', status: 'success', ...input } as EventInput, NOW, PRICING);

function issuesOf(input: Record<string, unknown>): string[] {
  try {
    buildEvent(input as unknown as EventInput, NOW, PRICING);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as InvalidInputError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  throw new Error('expected InvalidInputError');
}

describe('buildEvent', () => {
  it('fills defaults: ends now, zero duration, no session, no tokens, unknown-model price', () => {
    const event = build({});
    expect(collectIssues(agentEventSchema, event)).toEqual([]);
    expect(event).toMatchObject({
      session_id: '',
      ticket_key: '',
      started_at: NOW.toISOString(),
      ended_at: NOW.toISOString(),
      duration_seconds: 0,
      total_tokens: 0,
      estimated_cost_usd: 0,
      artifacts: [],
      error_message: '',
      model_used: '',
    });
    expect(event.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(build({}).event_id).not.toBe(event.event_id);
  });

  it('derives times from each other and converts offsets to UTC with Z', () => {
    expect(build({ durationSeconds: 90 })).toMatchObject({
      started_at: '2026-03-01T11:58:30.000Z',
      ended_at: NOW.toISOString(),
      duration_seconds: 90,
    });
    expect(build({ startedAt: '2026-03-01T13:00:00+02:00', durationSeconds: 60 })).toMatchObject({
      started_at: '2026-03-01T11:00:00.000Z',
      ended_at: '2026-03-01T11:01:00.000Z',
    });
    expect(build({ startedAt: new Date('2026-03-01T11:59:00.250Z') }).duration_seconds).toBe(59.75);
    // A given duration wins over the timestamps (the Python file has such events).
    expect(build({ startedAt: NOW, endedAt: NOW, durationSeconds: 3 }).duration_seconds).toBe(3);
  });

  it('prices by model unless costUsd is given; unknown models use the documented default', () => {
    expect(
      build({ model: 'claude-haiku-4-5', inputTokens: 26075, outputTokens: 841 }).estimated_cost_usd,
    ).toBe(0.03028);
    expect(build({ model: 'some-new-model', inputTokens: 1000, outputTokens: 1000 }).estimated_cost_usd).toBe(
      0.018,
    );
    expect(build({ model: 'claude-haiku-4-5', inputTokens: 1000, costUsd: 0.5 }).estimated_cost_usd).toBe(
      0.5,
    );
  });

  it('names every bad field by its camelCase input name', () => {
    expect(
      issuesOf({
        agentName: 'coding',
        status: 'done',
        inputTokens: 1.5,
        outputTokens: -1,
        startedAt: 'yesterday',
        costUsd: -1,
        artifacts: ['commit:a', 7, 'lines:many'],
        errorMessage: 3,
        inputToken: 5,
      }),
    ).toEqual([
      "status: expected one of 'success', 'error', 'timeout', 'blocked'",
      'inputTokens: expected a non-negative integer',
      'outputTokens: expected a non-negative integer',
      'startedAt: expected a valid Date or an ISO 8601 date-time such as 2026-01-31T12:00:00Z',
      'costUsd: expected a non-negative number',
      'artifacts[1]: expected a string',
      'artifacts[2]: expected lines:+<added>/-<removed>, e.g. lines:+120/-8',
      'errorMessage: expected a string',
      'inputToken: unknown field',
    ]);
    expect(issuesOf({})).toEqual([
      'agentName: required field is missing',
      'status: required field is missing',
    ]);
    expect(issuesOf(null as never)).toEqual(['(root): expected an object']);
    expect(issuesOf({ agentName: 'a', status: 'success', endedAt: new Date('nope') })[0]).toMatch(
      /^endedAt: /,
    );
  });

  it('rejects an event that ends before it starts, naming the field that was given', () => {
    expect(
      issuesOf({ agentName: 'a', status: 'success', startedAt: NOW, endedAt: '2026-03-01T11:00:00Z' }),
    ).toEqual(['endedAt: endedAt must not be before startedAt']);
    expect(issuesOf({ agentName: 'a', status: 'success', durationSeconds: 1e300 })).toEqual([
      'durationSeconds: puts the event outside the valid dates: expected a time between years 0001 and 9999 (UTC)',
    ]);
  });

  it('rejects a token count above MAX_TOKENS_PER_CALL, naming the field, and accepts the limit itself', () => {
    const tooMany = `expected a non-negative integer of at most ${MAX_TOKENS_PER_CALL} (MAX_TOKENS_PER_CALL) tokens per call`;
    // One such call put the project's total_tokens at the brink, and every later event failed.
    expect(
      issuesOf({ agentName: 'a', status: 'success', inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 2 }),
    ).toEqual([`inputTokens: ${tooMany}`]);
    expect(issuesOf({ agentName: 'a', status: 'success', outputTokens: MAX_TOKENS_PER_CALL + 1 })).toEqual([
      `outputTokens: ${tooMany}`,
    ]);
    expect(build({ inputTokens: MAX_TOKENS_PER_CALL, outputTokens: MAX_TOKENS_PER_CALL }).total_tokens).toBe(
      2 * MAX_TOKENS_PER_CALL,
    );
  });

  it('ends an event whose start is after now at its start (clock skew), when no end is given', () => {
    // Stamped by another host whose clock is 5 ms ahead: the event used to be rejected, and lost.
    const ahead = new Date(NOW.getTime() + 5);
    expect(build({ startedAt: ahead, inputTokens: 12000 })).toMatchObject({
      started_at: ahead.toISOString(),
      ended_at: ahead.toISOString(),
      duration_seconds: 0,
      total_tokens: 12000,
    });
    // Up to the tolerated skew; further ahead is a mistake (a mistyped year), not a clock.
    const edge = new Date(NOW.getTime() + CLOCK_SKEW_TOLERATED_MS);
    expect(build({ startedAt: edge })).toMatchObject({ ended_at: edge.toISOString(), duration_seconds: 0 });
    const beyond = new Date(NOW.getTime() + CLOCK_SKEW_TOLERATED_MS + 1000);
    expect(issuesOf({ agentName: 'a', status: 'success', startedAt: beyond })).toEqual([
      "startedAt: is 301 s after this machine's time, more than the 5 minutes two clocks may differ (give the end time too, to record an event in the future)",
    ]);
    expect(issuesOf({ agentName: 'a', status: 'success', startedAt: '2030-01-01T00:00:00Z' })).toHaveLength(
      1,
    );
    // The same with a duration (the end then derived from the start), and not with an end given.
    expect(
      issuesOf({ agentName: 'a', status: 'success', startedAt: '2030-01-01T00:00:00Z', durationSeconds: 5 }),
    ).toEqual([expect.stringMatching(/^startedAt: is \d+ s after this machine's time/)]);
    expect(build({ startedAt: '2030-01-01T00:00:00Z', endedAt: '2030-01-01T00:00:05Z' })).toMatchObject({
      duration_seconds: 5,
    });
    // A duration that ends the event years from now (milliseconds given as seconds).
    expect(
      issuesOf({ agentName: 'a', status: 'success', startedAt: NOW, durationSeconds: 315_360_000 }),
    ).toEqual([
      expect.stringMatching(/^durationSeconds: ends the event 315360000 s after this machine's time/),
    ]);
    // A given end before the start is still the caller's mistake.
    expect(issuesOf({ agentName: 'a', status: 'success', startedAt: ahead, endedAt: NOW })).toEqual([
      'endedAt: endedAt must not be before startedAt',
    ]);
  });

  it('rejects given, derived and defaulted times outside years 0001-9999, naming the field', () => {
    const range = 'expected a time between years 0001 and 9999 (UTC)';
    const event = { agentName: 'a', status: 'success' };
    // Parsed fine as dates, but written as `+033658-…`, which the file format rejects.
    expect(issuesOf({ ...event, startedAt: '2026-01-01T00:00:00Z', durationSeconds: 1e12 })).toEqual([
      `durationSeconds: puts the event outside the valid dates: ${range}`,
    ]);
    expect(issuesOf({ ...event, endedAt: '0001-01-01T00:00:00Z', durationSeconds: 1e12 })).toEqual([
      `durationSeconds: puts the event outside the valid dates: ${range}`,
    ]);
    // Year 0 is a 4-digit year, but Python's datetime (which reads this file too) starts at year 1.
    expect(
      issuesOf({ ...event, startedAt: new Date(Date.UTC(10000, 0, 1)), endedAt: '0000-12-31T23:59:59Z' }),
    ).toEqual([`startedAt: ${range}`, `endedAt: ${range}`]);
    // An offset can push a 4-digit local year out of range once converted to UTC.
    expect(issuesOf({ ...event, endedAt: '9999-12-31T23:00:00-05:00' })).toEqual([`endedAt: ${range}`]);
    expect(() => buildEvent(event as EventInput, new Date(Date.UTC(10000, 0, 1)), PRICING)).toThrow(
      "endedAt: defaults to the clock's now, which is outside years 0001 to 9999 (UTC)",
    );
    // The bounds themselves are storable.
    expect(build({ startedAt: '0001-01-01T00:00:00Z', endedAt: '9999-12-31T23:59:59.999Z' })).toMatchObject({
      started_at: '0001-01-01T00:00:00.000Z',
      ended_at: '9999-12-31T23:59:59.999Z',
    });
  });

  it('accepts a lines: artifact exactly when it counts in the profile (one rule for both)', () => {
    const lines = ['lines:+120/-8', 'lines:+999999999/-1', 'lines:+1234567890/-0', 'lines:+1/-', 'lines:120'];
    for (const artifact of lines) {
      let accepted = true;
      try {
        build({ artifacts: [artifact] });
      } catch {
        accepted = false;
      }
      expect([artifact, accepted]).toEqual([artifact, Object.keys(parseArtifact(artifact)).length > 0]);
    }
  });
});
