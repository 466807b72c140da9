import type { SessionStatus, SessionSummary, SessionType } from '../../index.js';
import { type Context, openMetrics, rehearsal, type StoreFlags } from '../context.js';
import { EXIT } from '../errors.js';
import { formatCount, formatUsd } from '../format/units.js';

export interface SessionStartFlags extends StoreFlags {
  type: SessionType;
  id?: string;
  json?: boolean;
}

export interface SessionEndFlags extends StoreFlags {
  status: SessionStatus;
  json?: boolean;
}

export async function runSessionStart(context: Context, flags: SessionStartFlags): Promise<number> {
  const metrics = await openMetrics(context, flags);
  const sessionId = await metrics.startSession({
    type: flags.type,
    ...(flags.id === undefined ? {} : { sessionId: flags.id }),
  });
  if (flags.json) {
    const session = (await metrics.getOpenSessions()).find((open) => open.session_id === sessionId);
    context.out.json(session ?? { session_id: sessionId });
  } else {
    context.out.line(sessionId);
  }
  return EXIT.ok;
}

export async function runSessionEnd(
  context: Context,
  sessionId: string,
  flags: SessionEndFlags,
): Promise<number> {
  const metrics = await openMetrics(context, flags);
  // An unknown or ended session is an error (exit 2) before anything is written, not after a new
  // folder and its lock file were made to try it.
  await rehearsal(await metrics.getState(), []).endSession(sessionId, flags.status);
  const summary = (await metrics.endSession(sessionId, flags.status)) as SessionSummary;
  if (flags.json) {
    context.out.json(summary);
  } else {
    const agents = summary.agents_invoked.join(', ') || 'no agents';
    context.out.line(
      `ended session ${summary.session_id} (#${summary.session_number}, ${summary.status}): ${agents}, ` +
        `${formatCount(summary.total_tokens)} tokens, ${formatUsd(summary.total_cost_usd)}`,
    );
  }
  return EXIT.ok;
}
