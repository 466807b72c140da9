import { type AgentProfile, CONTRIBUTION_COUNTERS, type DashboardState } from '../../index.js';

/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: it is a few lines of
 * escaping, and the client libraries (prom-client) bring a registry and process metrics we do
 * not want in a one-shot export. Each family is one `# HELP`, one `# TYPE`, then its samples.
 */

type Labels = Record<string, string>;

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: { labels: Labels; value: number }[];
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabelValue(value)}"`);
  return `{${pairs.join(',')}}`;
}

function render(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      lines.push(`${family.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const PREFIX = 'agent_metrics';

/** A numeric field of `AgentProfile` (checked by the schema before anything is exported). */
type NumericField = string;

const AGENT_COUNTERS: readonly [string, NumericField, string][] = [
  ['invocations_total', 'total_invocations', 'Invocations of the agent.'],
  ['successful_invocations_total', 'successful_invocations', 'Invocations that ended in success.'],
  ['failed_invocations_total', 'failed_invocations', 'Invocations that ended in error, timeout or blocked.'],
  ['tokens_total', 'total_tokens', 'Input plus output tokens used by the agent.'],
  ['cost_usd_total', 'total_cost_usd', 'Estimated cost of the agent in US dollars.'],
  ['duration_seconds_total', 'total_duration_seconds', 'Time spent in the agent, in seconds.'],
];

const AGENT_GAUGES: readonly [string, NumericField, string][] = [
  ['success_ratio', 'success_rate', 'Share of invocations that succeeded (0 to 1).'],
  ['avg_duration_seconds', 'avg_duration_seconds', 'Average duration of an invocation, in seconds.'],
  ['avg_tokens_per_call', 'avg_tokens_per_call', 'Average tokens per invocation.'],
  ['cost_per_success_usd', 'cost_per_success_usd', 'Cost divided by successful invocations, in US dollars.'],
  ['current_streak', 'current_streak', 'Successful invocations in a row, up to now.'],
  ['best_streak', 'best_streak', 'Longest run of successful invocations.'],
];

/** Unix time in seconds of a timestamp the schema already checked. */
function unixSeconds(timestamp: string): number {
  return Date.parse(timestamp) / 1000;
}

/** Project totals and per-agent counters and gauges, labelled with `project` (and `agent`). */
export function toPrometheus(state: DashboardState): string {
  const project = state.project_name;
  const agents = Object.keys(state.agents)
    .sort()
    .map((name) => state.agents[name] as AgentProfile);
  const perAgent = (field: NumericField) =>
    agents.map((agent) => ({ labels: { project, agent: agent.agent_name }, value: agent[field] as number }));
  const projectSample = (value: number) => [{ labels: { project }, value }];

  const families: Family[] = [
    {
      name: `${PREFIX}_sessions_total`,
      type: 'counter',
      help: 'Sessions started in the project.',
      samples: projectSample(state.total_sessions),
    },
    {
      name: `${PREFIX}_project_tokens_total`,
      type: 'counter',
      help: 'Tokens used by all agents of the project.',
      samples: projectSample(state.total_tokens),
    },
    {
      name: `${PREFIX}_project_cost_usd_total`,
      type: 'counter',
      help: 'Estimated cost of all agents of the project, in US dollars.',
      samples: projectSample(state.total_cost_usd),
    },
    {
      name: `${PREFIX}_project_duration_seconds_total`,
      type: 'counter',
      help: 'Time spent in all agents of the project, in seconds.',
      samples: projectSample(state.total_duration_seconds),
    },
  ];
  families.push({
    name: `${PREFIX}_last_update_timestamp_seconds`,
    type: 'gauge',
    help: 'When the project file was last written (Unix time).',
    samples: projectSample(unixSeconds(state.updated_at)),
  });
  for (const [suffix, field, help] of AGENT_COUNTERS) {
    families.push({ name: `${PREFIX}_agent_${suffix}`, type: 'counter', help, samples: perAgent(field) });
  }
  families.push({
    name: `${PREFIX}_agent_contributions_total`,
    type: 'counter',
    help: 'Contributions of the agent by kind (commits_made, prs_created, …), from its artifacts.',
    samples: agents.flatMap((agent) =>
      CONTRIBUTION_COUNTERS.map((kind) => ({
        labels: { project, agent: agent.agent_name, kind },
        value: agent[kind] as number,
      })),
    ),
  });
  for (const [suffix, field, help] of AGENT_GAUGES) {
    families.push({ name: `${PREFIX}_agent_${suffix}`, type: 'gauge', help, samples: perAgent(field) });
  }
  families.push({
    name: `${PREFIX}_agent_last_active_timestamp_seconds`,
    type: 'gauge',
    help: 'When the agent last finished an invocation (Unix time).',
    // An agent that never finished an invocation has no `last_active`: no sample, rather than 0.
    samples: agents
      .filter((agent) => agent.last_active !== '')
      .map((agent) => ({
        labels: { project, agent: agent.agent_name },
        value: unixSeconds(agent.last_active),
      })),
  });
  return render(families);
}
