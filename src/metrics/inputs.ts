import { z } from 'zod';
import { InvalidInputError, type ValidationIssue } from '../errors.js';
import { LINES_ARTIFACT } from '../model/artifacts.js';
import { formatPath } from '../model/schema.js';
import {
  EVENT_STATUSES,
  type EventStatus,
  SESSION_STATUSES,
  SESSION_TYPES,
  type SessionType,
} from '../model/types.js';

/** A point in time: a `Date`, or an ISO 8601 date-time string (`Z` or an offset). */
export type TimeInput = Date | string;

/** What an agent reports about one invocation (`AgentMetrics.recordEvent`). */
export interface EventInput {
  /** Agent name, e.g. `coding`. Required. */
  agentName: string;
  /** `success`, `error`, `timeout` or `blocked`. Required. */
  status: EventStatus;
  /** Session the event belongs to (from `startSession`). @default '' (no session) */
  sessionId?: string;
  /** Ticket worked on, e.g. `AI-42`. @default '' */
  ticketKey?: string;
  /** Model used; prices the call. @default '' (priced as an unknown model) */
  model?: string;
  /** @default 0 */
  inputTokens?: number;
  /** @default 0 */
  outputTokens?: number;
  /** @default endedAt minus durationSeconds, or endedAt */
  startedAt?: TimeInput;
  /** @default startedAt plus durationSeconds when both are given, else now */
  endedAt?: TimeInput;
  /** @default endedAt minus startedAt, in seconds */
  durationSeconds?: number;
  /** Actual cost when the caller knows it (e.g. from the SDK). @default priced from the tokens */
  costUsd?: number;
  /** E.g. `commit:abc123`, `pr:#42`, `file:src/app.ts`; see `ARTIFACT_RULES`. @default [] */
  artifacts?: readonly string[];
  /** @default '' */
  errorMessage?: string;
}

/** `AgentMetrics.startSession` input. */
export interface SessionInput {
  /** @default 'continuation' */
  type?: SessionType;
  /** Your own session id, when the orchestrator already has one. @default crypto.randomUUID() */
  sessionId?: string;
  /** @default now */
  startedAt?: TimeInput;
}

/** `AgentMetrics.endSession` extra input. */
export interface EndSessionInput {
  /** @default now */
  endedAt?: TimeInput;
}

const OBJECT = 'expected an object';
const COUNT = 'expected a non-negative integer';
const AMOUNT = 'expected a non-negative number';
const TEXT = 'expected a string';

const count = z.int({ error: COUNT }).min(0, { error: COUNT });
const amount = z.number({ error: AMOUNT }).min(0, { error: AMOUNT });
const text = z.string({ error: TEXT });
// A missing required field says so, rather than "expected a string".
const orMissing = (message: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'required field is missing' : message;
const name = z
  .string({ error: orMissing('expected a non-empty string') })
  .min(1, 'expected a non-empty string');
const TIME = 'expected a valid Date or an ISO 8601 date-time such as 2026-01-31T12:00:00Z';
/**
 * Times a timestamp of the shared file can hold: a 4-digit year (a later one is written as
 * `+010000-…`), and not year 0, which Python's `datetime` (MINYEAR = 1) cannot read.
 */
export const MIN_TIME_MS = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
export const MAX_TIME_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
/** Why a time outside that range is rejected. */
export const OUT_OF_RANGE = 'expected a time between years 0001 and 9999 (UTC)';

/** Whether `ms` can be stored as a timestamp of the file format (`false` for NaN). */
export function isStorableTime(ms: number): boolean {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;
}

const timeMs = (time: TimeInput) => (typeof time === 'string' ? Date.parse(time) : time.getTime());
// A year ≥ 10000 would be written as `+010000-…`, which the state schema rejects later, under the
// lock (E_INVALID_STATE): reject it here, as the input error it is.
const time = z
  .union([z.date({ error: TIME }), z.iso.datetime({ offset: true, error: TIME })], { error: TIME })
  .refine((value) => isStorableTime(timeMs(value)), {
    error: OUT_OF_RANGE,
    // Only for a valid Date or date-time: anything else already has its issue.
    when: (payload) => payload.issues.length === 0,
  });
const artifact = text.refine((value) => !value.startsWith('lines:') || LINES_ARTIFACT.test(value), {
  error: 'expected lines:+<added>/-<removed>, e.g. lines:+120/-8',
});
const oneOf = (values: readonly string[]) => `expected one of ${values.map((v) => `'${v}'`).join(', ')}`;

export const eventInputSchema = z.strictObject(
  {
    agentName: name,
    status: z.enum(EVENT_STATUSES, { error: orMissing(oneOf(EVENT_STATUSES)) }),
    sessionId: text.optional(),
    ticketKey: text.optional(),
    model: text.optional(),
    inputTokens: count.optional(),
    outputTokens: count.optional(),
    startedAt: time.optional(),
    endedAt: time.optional(),
    durationSeconds: amount.optional(),
    costUsd: amount.optional(),
    artifacts: z.array(artifact, { error: 'expected an array of strings' }).optional(),
    errorMessage: text.optional(),
  },
  { error: OBJECT },
);

/** What `trackAgent` needs up front; the rest is measured or reported through the tracker. */
export const trackContextSchema = eventInputSchema.pick({
  agentName: true,
  sessionId: true,
  ticketKey: true,
  model: true,
  artifacts: true,
});

export const sessionInputSchema = z.strictObject(
  {
    type: z.enum(SESSION_TYPES, { error: oneOf(SESSION_TYPES) }).optional(),
    sessionId: name.optional(),
    startedAt: time.optional(),
  },
  { error: OBJECT },
);

export const endSessionSchema = z.strictObject(
  {
    sessionId: name,
    status: z.enum(SESSION_STATUSES, { error: orMissing(oneOf(SESSION_STATUSES)) }),
    endedAt: time.optional(),
  },
  { error: OBJECT },
);

function issuesOf(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((issue): ValidationIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/** Parses `input` with `schema`, or throws `InvalidInputError` naming every bad field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new InvalidInputError(issuesOf(result.error));
  return result.data;
}

/** `Date` or ISO string → ISO 8601 UTC with `Z`. */
export function toIso(time: TimeInput): string {
  return (typeof time === 'string' ? new Date(time) : time).toISOString();
}

/**
 * `time` as a timestamp of the file format, or `InvalidInputError` naming `path` when it lies
 * outside years 0001–9999. For times the caller did not give (the clock's "now"), which the
 * input schema has not checked.
 */
export function storableIso(time: Date, path: string): string {
  if (!isStorableTime(time.getTime())) {
    throw new InvalidInputError([
      { path, message: "defaults to the clock's now, which is outside years 0001 to 9999 (UTC)" },
    ]);
  }
  return time.toISOString();
}
