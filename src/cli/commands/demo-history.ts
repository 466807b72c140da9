import type { EventInput, EventStatus, SessionStatus, SessionType } from '../../index.js';
import { seededRandom } from '../seeded-random.js';

/**
 * A made-up but realistic orchestrator history for `demo`: sessions in which a Linear agent
 * picks a ticket, a coding agent implements it (with the odd failing test run), a GitHub agent
 * opens and merges the PR after a review, and a Slack agent reports. Same seed, same history.
 */

export interface DemoSession {
  sessionId: string;
  type: SessionType;
  startedAt: Date;
  events: EventInput[];
  /** Undefined: the session is left in progress (the loop is "still running"). */
  end?: { status: SessionStatus; endedAt: Date };
}

const FILES = [
  'src/api/client.ts',
  'src/auth/session.ts',
  'src/ui/dashboard.tsx',
  'src/db/migrate.ts',
  'src/jobs/sync.ts',
];
const FAILURES: Record<string, [EventStatus, string][]> = {
  coding: [
    ['error', 'tests failed: 3 failing in test/api/client.test.ts'],
    ['timeout', 'agent timed out after 600 s'],
  ],
  github: [['blocked', 'waiting for required CI checks']],
  linear: [['error', 'Linear API rate limit exceeded (429)']],
  reviewer: [['error', 'review aborted: diff too large for context window']],
  slack: [['error', 'channel_not_found: #eng-agents']],
};
const MODELS: Record<string, string> = {
  linear: 'claude-haiku-4-5',
  coding: 'claude-sonnet-4-5',
  github: 'claude-haiku-4-5',
  reviewer: 'claude-opus-4-5',
  slack: 'claude-haiku-4-5',
};
/** Input / output token ranges per agent: a coding call reads far more context than a Slack post. */
const TOKENS: Record<string, [number, number]> = {
  linear: [6_000, 600],
  coding: [45_000, 6_000],
  github: [12_000, 900],
  reviewer: [30_000, 2_500],
  slack: [2_500, 300],
};

export const DEMO_START = new Date('2026-01-05T09:00:00.000Z');

export function demoHistory(seed: number, sessionCount = 8): DemoSession[] {
  const random = seededRandom(seed);
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const hex = () =>
    Math.floor(random() * 0xfffffff)
      .toString(16)
      .padStart(7, '0');
  let ticket = 100;
  let pr = 40;
  const sessions: DemoSession[] = [];

  for (let index = 0; index < sessionCount; index++) {
    const startedAt = new Date(DEMO_START.getTime() + index * 26 * 3600_000);
    let clock = startedAt.getTime();
    // The seed in the id: `demo --force` with another seed adds another history to a project.
    const sessionId = `demo-${seed}-session-${String(index + 1).padStart(2, '0')}`;
    const events: EventInput[] = [];
    let sessionFailed = false;

    const call = (agentName: string, ticketKey: string, artifacts: string[], failureRate = 0.1): boolean => {
      const durationSeconds =
        Math.round((agentName === 'coding' ? between(60, 420) : between(5, 90)) * 10 + random() * 10) / 10;
      const [input, output] = TOKENS[agentName] as [number, number];
      const failure =
        random() < failureRate
          ? (FAILURES[agentName] ?? [])[between(0, (FAILURES[agentName]?.length ?? 1) - 1)]
          : undefined;
      clock += between(20, 120) * 1000;
      const startedAt = new Date(clock);
      clock += durationSeconds * 1000;
      events.push({
        agentName,
        sessionId,
        ticketKey,
        model: MODELS[agentName] as string,
        status: failure?.[0] ?? 'success',
        inputTokens: Math.round(input * (0.5 + random())),
        outputTokens: Math.round(output * (0.5 + random())),
        startedAt,
        endedAt: new Date(clock),
        durationSeconds,
        artifacts: failure ? [] : artifacts,
        errorMessage: failure?.[1] ?? '',
      });
      return failure === undefined;
    };

    const tickets = between(1, 2);
    for (let t = 0; t < tickets; t++) {
      const key = `AI-${++ticket}`;
      call('linear', key, [`issue:${key}`]);
      const file = FILES[between(0, FILES.length - 1)] as string;
      let coded = false;
      for (let attempt = 0; attempt < 3 && !coded; attempt++) {
        coded = call(
          'coding',
          key,
          [
            `file:${file}`,
            `file:test/${file.replace(/^src\//, '').replace(/\.tsx?$/, '.test.ts')}:created`,
            `lines:+${between(20, 400)}/-${between(0, 120)}`,
            `test:${key.toLowerCase()}-${attempt + 1}`,
            `commit:${hex()}`,
          ],
          0.3,
        );
      }
      if (!coded) {
        sessionFailed = true;
        continue;
      }
      const number = ++pr;
      call('github', key, [`pr:#${number}`]);
      call('reviewer', key, [`review:pr-${number}`]);
      if (call('github', key, [`pr:#${number}:merged`])) call('linear', key, [`issue:${key}:completed`]);
    }
    call('slack', '', ['message:#eng-agents']);
    const last = index === sessionCount - 1;
    const status: SessionStatus = sessionFailed
      ? 'error'
      : index === sessionCount - 2
        ? 'complete'
        : 'continue';
    sessions.push({
      sessionId,
      type: index === 0 ? 'initializer' : 'continuation',
      startedAt,
      events,
      ...(last ? {} : { end: { status, endedAt: new Date(clock + 30_000) } }),
    });
  }
  return sessions;
}
