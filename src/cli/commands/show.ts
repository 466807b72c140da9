import {
  type AgentEvent,
  type AgentProfile,
  CONTRIBUTION_COUNTERS,
  type DashboardState,
  MetricsError,
  type OpenSession,
  type SessionSummary,
} from '../../index.js';
import { type Context, existingProjectDir, openStore, rehearsal, type StoreFlags } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { formatCount, formatDuration, formatPercent, formatTime, formatUsd } from '../format/units.js';
import type { Output } from '../output.js';

export interface ShowFlags extends StoreFlags {
  agent?: string;
  limit: number;
  json?: boolean;
}

/**
 * The sessions in progress of the loaded snapshot, read (and checked) by the domain API. A
 * malformed list is not a reason to hide the whole dashboard: say so, and show the rest.
 */
async function sessionsInProgress(out: Output, state: DashboardState): Promise<OpenSession[]> {
  // On the rehearsal's copy, without the events and profiles: a copy of the whole state, made
  // twice, took 1.1 of `show`'s 1.9 s at 50,000 events (`node bench/probes/cli-large.mjs`).
  try {
    return await rehearsal(state, []).getOpenSessions();
  } catch (error) {
    if (!(error instanceof MetricsError && error.code === 'E_INVALID_STATE')) throw error;
    out.warn(
      `sessions in progress not shown: ${error.message} (the next 'session start' or 'session end' sets them aside)`,
    );
    return [];
  }
}

function statusCell(out: Output, status: string): string {
  const { green, red, yellow } = out.colors;
  if (status === 'success' || status === 'complete') return green(status);
  if (status === 'error') return red(status);
  return yellow(status);
}

function eventsTable(out: Output, events: readonly AgentEvent[]): void {
  out.table({
    head: ['ended', 'agent', 'status', 'ticket', 'tokens', 'cost', 'time', 'artifacts / error'],
    numeric: [4, 5, 6],
    rows: events.map((event) => [
      formatTime(event.ended_at || event.started_at),
      event.agent_name,
      statusCell(out, event.status),
      event.ticket_key || '-',
      formatCount(event.total_tokens),
      formatUsd(event.estimated_cost_usd),
      formatDuration(event.duration_seconds),
      event.error_message || event.artifacts.join(' ') || '-',
    ]),
  });
}

function sessionsTable(out: Output, sessions: readonly (SessionSummary | OpenSession)[]): void {
  out.table({
    head: ['#', 'session', 'type', 'status', 'started', 'ended', 'agents', 'tokens', 'cost'],
    numeric: [0, 7, 8],
    rows: sessions.map((session) => [
      String(session.session_number),
      session.session_id,
      session.session_type,
      'status' in session ? statusCell(out, String(session.status)) : out.colors.cyan('running'),
      formatTime(session.started_at),
      'ended_at' in session ? formatTime(String(session.ended_at)) : '-',
      session.agents_invoked.join(' ') || '-',
      formatCount(session.total_tokens),
      formatUsd(session.total_cost_usd),
    ]),
  });
}

function showProject(out: Output, state: DashboardState, running: OpenSession[], limit: number): void {
  const { bold, dim } = out.colors;
  out.heading(`Project ${state.project_name}`);
  out.line(
    [
      `sessions ${bold(formatCount(state.total_sessions))}`,
      `tokens ${bold(formatCount(state.total_tokens))}`,
      `cost ${bold(formatUsd(state.total_cost_usd))}`,
      `agent time ${bold(formatDuration(state.total_duration_seconds))}`,
      dim(`updated ${formatTime(state.updated_at)}`),
    ].join('  ·  '),
  );
  const agents = Object.values(state.agents).sort((a, b) => b.total_invocations - a.total_invocations);
  out.line();
  // The busiest `limit`: a table of every agent took 11 s at 10,000 agents.
  out.heading(agents.length > limit ? `Agents (${limit} of ${agents.length}, most calls first)` : 'Agents');
  if (agents.length === 0) out.line(dim('no agent has run yet'));
  else {
    out.table({
      head: ['agent', 'calls', 'success', 'avg time', 'tokens', 'cost', 'last active'],
      numeric: [1, 2, 3, 4, 5],
      rows: agents
        .slice(0, limit)
        .map((agent) => [
          agent.agent_name,
          formatCount(agent.total_invocations),
          formatPercent(agent.success_rate),
          formatDuration(agent.avg_duration_seconds),
          formatCount(agent.total_tokens),
          formatUsd(agent.total_cost_usd),
          formatTime(agent.last_active),
        ]),
    });
  }
  if (running.length > 0) {
    out.line();
    out.heading('Sessions in progress');
    sessionsTable(out, running);
  }
  out.line();
  out.heading(`Recent sessions (${Math.min(limit, state.sessions.length)} of ${state.sessions.length} kept)`);
  if (state.sessions.length > 0) sessionsTable(out, state.sessions.slice(-limit).reverse());
  out.line();
  out.heading(`Recent events (${Math.min(limit, state.events.length)} of ${state.events.length} kept)`);
  if (state.events.length > 0) eventsTable(out, state.events.slice(-limit).reverse());
}

function showAgent(out: Output, profile: AgentProfile, events: readonly AgentEvent[], limit: number): void {
  out.heading(`Agent ${profile.agent_name}`);
  const contributions = CONTRIBUTION_COUNTERS.filter((field) => profile[field] > 0)
    .map((field) => `${field.replace(/_/g, ' ')} ${formatCount(profile[field])}`)
    .join(', ');
  out.table({
    head: ['metric', 'value'],
    rows: [
      [
        'calls',
        `${formatCount(profile.total_invocations)} (${profile.successful_invocations} ok, ${profile.failed_invocations} failed)`,
      ],
      ['success rate', formatPercent(profile.success_rate)],
      ['streak', `${profile.current_streak} (best ${profile.best_streak})`],
      [
        'tokens',
        `${formatCount(profile.total_tokens)} (avg ${formatCount(Math.round(profile.avg_tokens_per_call))} per call)`,
      ],
      [
        'cost',
        `${formatUsd(profile.total_cost_usd)} (${formatUsd(profile.cost_per_success_usd)} per success)`,
      ],
      [
        'time',
        `${formatDuration(profile.total_duration_seconds)} (avg ${formatDuration(profile.avg_duration_seconds)})`,
      ],
      ['contributions', contributions || '-'],
      ['last error', profile.last_error || '-'],
      ['last active', formatTime(profile.last_active)],
    ],
  });
  out.line();
  out.heading(`Recent events (${Math.min(limit, events.length)} of ${events.length} kept)`);
  if (events.length > 0) eventsTable(out, events.slice(-limit).reverse());
}

export async function runShow(context: Context, flags: ShowFlags): Promise<number> {
  await existingProjectDir(context, flags);
  const state = await openStore(context, flags).load();
  const { out } = context;
  if (flags.agent === undefined) {
    if (flags.json) out.json(state);
    else showProject(out, state, await sessionsInProgress(out, state), flags.limit);
    return EXIT.ok;
  }
  const name = flags.agent;
  if (!Object.hasOwn(state.agents, name)) {
    const known = Object.keys(state.agents).join(', ') || 'none yet';
    throw new UsageError(`--agent: no agent named ${JSON.stringify(name)} (known: ${known})`);
  }
  const profile = state.agents[name] as AgentProfile;
  const events = state.events.filter((event) => event.agent_name === name);
  if (flags.json) out.json({ profile, events });
  else showAgent(out, profile, events, flags.limit);
  return EXIT.ok;
}
