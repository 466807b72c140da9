import { randomUUID } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import { costOf, type ModelPrice, priceOf } from '../model/pricing.js';
import type { AgentEvent } from '../model/types.js';
import {
  type EventInput,
  eventInputSchema,
  isStorableTime,
  OUT_OF_RANGE,
  parseInput,
  storableIso,
  toMs,
} from './inputs.js';

export interface Pricing {
  prices: Readonly<Record<string, ModelPrice>>;
  unknownModelPrice: ModelPrice;
}

/**
 * How far the end of an event given a `startedAt` and no `endedAt` may be ahead of this machine's
 * clock: two clocks may differ; a start years ahead is a mistake.
 */
export const CLOCK_SKEW_TOLERATED_MS = 5 * 60_000;

/**
 * Validates `input` and turns it into the stored event (file format), or throws
 * `InvalidInputError` naming each bad field. Times: `endedAt` defaults to `startedAt +
 * durationSeconds` when both are given, else to `now`, or to `startedAt` when that is later (a
 * clock ahead of ours stamped it); `startedAt` to `endedAt - durationSeconds`
 * (or `endedAt`); `durationSeconds` to the time between them. Cost: `costUsd`, else priced.
 */
export function buildEvent(input: EventInput, now: Date, pricing: Pricing): AgentEvent {
  const parsed = parseInput(eventInputSchema, input);
  const startMs = parsed.startedAt === undefined ? undefined : toMs(parsed.startedAt);
  const duration = parsed.durationSeconds;
  let endMs: number;
  if (parsed.endedAt !== undefined) endMs = toMs(parsed.endedAt);
  else if (startMs !== undefined && duration !== undefined) endMs = startMs + duration * 1000;
  else {
    endMs = Date.parse(storableIso(now, 'endedAt'));
    // A start stamped by a clock ahead of ours (another process or host) would make "now" end
    // the event before it starts, and the event was lost as invalid input: it ends at its start
    // (zero duration), as endSession and trackAgent tolerate such skew. A given end is not moved.
    if (startMs !== undefined && endMs < startMs) endMs = startMs;
  }
  const beginMs = startMs ?? endMs - (duration ?? 0) * 1000;
  // Given times were range-checked by the schema, "now" by storableIso: only a duration can put
  // the derived start or end outside the timestamps the file format can hold.
  if (!isStorableTime(endMs) || !isStorableTime(beginMs)) {
    throw new InvalidInputError([
      { path: 'durationSeconds', message: `puts the event outside the valid dates: ${OUT_OF_RANGE}` },
    ]);
  }
  if (parsed.endedAt === undefined && startMs !== undefined) assertNotFarAhead(startMs, endMs, now);
  // Only a given end can come before the start now.
  if (endMs < beginMs) {
    throw new InvalidInputError([{ path: 'endedAt', message: 'endedAt must not be before startedAt' }]);
  }
  const model = parsed.model ?? '';
  const inputTokens = parsed.inputTokens ?? 0;
  const outputTokens = parsed.outputTokens ?? 0;
  const cost =
    parsed.costUsd ??
    costOf(priceOf(model, pricing.prices, pricing.unknownModelPrice), inputTokens, outputTokens);
  const totalTokens = inputTokens + outputTokens;
  // Not reached while both are at most MAX_TOKENS_PER_CALL; kept so that raising that limit
  // cannot let a total the file format rejects through to the store.
  if (!Number.isSafeInteger(totalTokens)) {
    throw new InvalidInputError([
      { path: 'outputTokens', message: 'inputTokens + outputTokens is too large' },
    ]);
  }
  return {
    event_id: randomUUID(),
    agent_name: parsed.agentName,
    session_id: parsed.sessionId ?? '',
    ticket_key: parsed.ticketKey ?? '',
    started_at: new Date(beginMs).toISOString(),
    ended_at: new Date(endMs).toISOString(),
    duration_seconds: duration ?? (endMs - beginMs) / 1000,
    status: parsed.status,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    total_tokens: totalTokens,
    estimated_cost_usd: cost,
    artifacts: [...(parsed.artifacts ?? [])],
    error_message: parsed.errorMessage ?? '',
    model_used: model,
  };
}

/**
 * An event given a start and no end whose end (the start, or the start plus the duration) is
 * further ahead of `now` than two clocks differ: a mistake (a mistyped year, milliseconds given
 * as seconds), refused naming the start when it is that far ahead itself, else the duration.
 */
function assertNotFarAhead(startMs: number, endMs: number, now: Date): void {
  const endAhead = endMs - now.getTime();
  if (endAhead <= CLOCK_SKEW_TOLERATED_MS) return;
  const startAhead = startMs - now.getTime();
  const limit = `more than the ${CLOCK_SKEW_TOLERATED_MS / 60_000} minutes two clocks may differ (give the end time too, to record an event in the future)`;
  throw new InvalidInputError([
    startAhead > CLOCK_SKEW_TOLERATED_MS
      ? {
          path: 'startedAt',
          message: `is ${Math.round(startAhead / 1000)} s after this machine's time, ${limit}`,
        }
      : {
          path: 'durationSeconds',
          message: `ends the event ${Math.round(endAhead / 1000)} s after this machine's time, ${limit}`,
        },
  ]);
}
