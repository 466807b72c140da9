import {
  type AgentEvent,
  type DashboardState,
  type EventInput,
  InvalidInputError,
  StateValidationError,
  type ValidationIssue,
} from '../../index.js';
import { type Context, openMetrics, rehearsal, type StoreFlags } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { readAll } from '../io.js';

export interface RecordFlags extends StoreFlags {
  agent?: string;
  status?: EventInput['status'];
  inputTokens?: number;
  outputTokens?: number;
  model?: string;
  ticket?: string;
  session?: string;
  duration?: number;
  startedAt?: string;
  endedAt?: string;
  cost?: number;
  artifact?: string[];
  error?: string;
  json?: boolean | string;
}

/** Each event field and the option that sets it: one table for the input and for messages. */
const OPTION_OF = {
  agentName: 'agent',
  status: 'status',
  inputTokens: 'inputTokens',
  outputTokens: 'outputTokens',
  model: 'model',
  ticketKey: 'ticket',
  sessionId: 'session',
  durationSeconds: 'duration',
  startedAt: 'startedAt',
  endedAt: 'endedAt',
  costUsd: 'cost',
  artifacts: 'artifact',
  errorMessage: 'error',
} as const satisfies Record<string, keyof RecordFlags>;

type EventField = keyof typeof OPTION_OF;

/** `inputTokens` → `--input-tokens`, as the user typed it. */
function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function inputFromFlags(flags: RecordFlags): EventInput {
  if (flags.agent === undefined) {
    throw new UsageError("--agent <name> is required (or pipe events into 'agent-metrics record --json -')");
  }
  const input: Record<string, unknown> = { status: 'success' };
  for (const [field, option] of Object.entries(OPTION_OF)) {
    if (flags[option] !== undefined) input[field] = flags[option];
  }
  return input as unknown as EventInput;
}

/** `artifacts[1]` → `--artifact`: the flag, not the field, in messages about flags. */
function withFlagNames(error: InvalidInputError): InvalidInputError {
  return new InvalidInputError(
    error.issues.map((issue) => {
      const field = /^[A-Za-z]+/.exec(issue.path)?.[0] ?? '';
      const option = Object.hasOwn(OPTION_OF, field) ? OPTION_OF[field as EventField] : undefined;
      return { path: option === undefined ? issue.path : flagOf(option), message: issue.message };
    }),
  );
}

/** One JSON object (pretty-printed or not), or NDJSON: one object per non-empty line. */
export function parseEventsText(text: string): unknown[] {
  if (text.trim() === '')
    throw new UsageError('--json -: stdin is empty; expected one JSON object, or one per line (NDJSON)');
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined; // not one document: read it as NDJSON below
  }
  if (whole !== undefined) return [assertObject(whole, 'stdin')];
  const events: unknown[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `stdin line ${index + 1}`;
    try {
      events.push(assertObject(JSON.parse(line), where));
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`--json -: ${where}: not valid JSON: ${(error as Error).message}`);
    }
  });
  return events;
}

function assertObject(value: unknown, where: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(
      `--json -: ${where}: expected a JSON object with camelCase keys such as {"agentName":"coding","status":"success"}`,
    );
  }
  return value;
}

/**
 * An event valid alone that the project's state cannot take (a token total it would push past
 * `Number.MAX_SAFE_INTEGER` is already an input error; a counter or a sum of costs the file cannot
 * hold is not): bad input, exit 2, as nothing was written.
 */
function overflowIssue(path: string, error: StateValidationError): ValidationIssue {
  const first = error.issues[0];
  return {
    path,
    message: `recording it would leave the project's state invalid (${first?.path}: ${first?.message})`,
  };
}

/**
 * Records `inputs` first into a copy of the project's `current` state in memory, so that none is
 * written unless all can be: each valid alone, and the state valid after each (totals that would
 * overflow). Another process may still write in between; then a later event can fail after
 * earlier ones were written, and the command says how many were.
 */
async function validateAll(inputs: readonly unknown[], current: DashboardState): Promise<void> {
  const scratch = rehearsal(
    current,
    inputs.map((input) => (input as { agentName?: unknown }).agentName),
  );
  const issues: ValidationIssue[] = [];
  for (const [index, input] of inputs.entries()) {
    const where = inputs.length === 1 ? 'stdin' : `stdin event ${index + 1}`;
    try {
      await scratch.recordEvent(input as EventInput);
    } catch (error) {
      if (error instanceof InvalidInputError) {
        issues.push(
          ...error.issues.map((issue) => ({ path: `${where}: ${issue.path}`, message: issue.message })),
        );
      } else if (error instanceof StateValidationError) {
        issues.push(overflowIssue(where, error));
      } else {
        throw error;
      }
    }
  }
  if (issues.length > 0) throw new InvalidInputError(issues);
}

async function recordFromStdin(context: Context, flags: RecordFlags): Promise<number> {
  const given = Object.values(OPTION_OF).find((option) => flags[option] !== undefined);
  if (given !== undefined) {
    throw new UsageError(`${flagOf(given)} cannot be combined with --json -: the events come from stdin`);
  }
  const inputs = parseEventsText(await readAll(context.io.stdin));
  const metrics = await openMetrics(context, flags);
  await validateAll(inputs, await metrics.getState());
  for (const [index, input] of inputs.entries()) {
    try {
      const event = (await metrics.recordEvent(input as EventInput)) as AgentEvent;
      context.out.ndjson([event]);
    } catch (error) {
      if (index > 0)
        context.io.stderr.write(`recorded ${index} of ${inputs.length} events before this failure:\n`);
      throw error;
    }
  }
  return EXIT.ok;
}

export async function runRecord(context: Context, flags: RecordFlags): Promise<number> {
  if (typeof flags.json === 'string') {
    if (flags.json !== '-') {
      throw new UsageError(`--json: takes no value, or '-' to read events from stdin (got '${flags.json}')`);
    }
    return recordFromStdin(context, flags);
  }
  const input = inputFromFlags(flags);
  let event: AgentEvent;
  try {
    event = (await (await openMetrics(context, flags)).recordEvent(input)) as AgentEvent;
  } catch (error) {
    if (error instanceof InvalidInputError) throw withFlagNames(error);
    // The store checks what recording changes before writing: nothing was written.
    if (error instanceof StateValidationError) throw new InvalidInputError([overflowIssue('event', error)]);
    throw error;
  }
  if (flags.json) context.out.json(event);
  else context.out.line(event.event_id);
  return EXIT.ok;
}
