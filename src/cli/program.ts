import { createRequire } from 'node:module';
import { Command, Option } from 'commander';
import { DEFAULT_CAPS, EVENT_STATUSES, METRICS_FILE, SESSION_STATUSES, SESSION_TYPES } from '../index.js';
import type { Context } from './context.js';
import {
  collect,
  fileMode,
  folder,
  milliseconds,
  nonNegativeInteger,
  nonNegativeNumber,
  positiveInteger,
} from './parse.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Runs a command's implementation and returns its exit code; loaded on demand (fast start). */
type Run = (load: () => Promise<number>) => Promise<void>;

const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  problems found (verify, repair --dry-run)
  2  usage error: unknown command or flag, bad value, invalid input (nothing is written)
  3  storage error: lock timeout, I/O failure (message starts with its code, e.g. E_LOCK_TIMEOUT)`;

const PROGRAM_HELP = `
Every command takes --dir <folder> (default: the current folder) and --help.
Output is coloured in a terminal; plain when piped or when NO_COLOR is set. With --json, stdout
holds exactly one JSON document (NDJSON where a command says so).

Try it:
  $ agent-metrics demo --dir /tmp/agent-metrics-demo
  $ agent-metrics show --dir /tmp/agent-metrics-demo`;

const RECORD_JSON_HELP = `

JSON input (--json -): one object per event, with the keys of AgentMetrics.recordEvent:
  agentName, status (required); sessionId, ticketKey, model, inputTokens, outputTokens,
  startedAt, endedAt, durationSeconds, costUsd, artifacts, errorMessage.
  Every event is checked before the first one is written.`;

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}`;
}

function addStoreOptions(command: Command): Command {
  return command
    .option('--dir <folder>', `project folder that holds ${METRICS_FILE}`, folder, '.')
    .option('--project <name>', 'project name written when the store is created (default: the folder name)')
    .option('--lock-timeout <ms>', 'how long a write waits for the lock', milliseconds, 10_000);
}

function recordCommand(program: Command, context: Context, run: Run): void {
  addStoreOptions(
    program
      .command('record')
      .description('record one agent invocation, from flags or as JSON/NDJSON on stdin (--json -)')
      .option('--agent <name>', 'agent name (required unless the event comes from stdin)')
      .addOption(new Option('--status <status>', 'outcome (default: success)').choices(EVENT_STATUSES))
      .option('--input-tokens <n>', 'input tokens', nonNegativeInteger)
      .option('--output-tokens <n>', 'output tokens', nonNegativeInteger)
      .option('--model <name>', 'model used (prices the call)')
      .option('--ticket <key>', 'ticket worked on, e.g. AI-42')
      .option('--session <id>', 'session the call belongs to (from `session start`)')
      .option('--duration <seconds>', 'duration in seconds (default: from the times)', nonNegativeNumber)
      .option('--started-at <iso>', 'start time, ISO 8601')
      .option('--ended-at <iso>', 'end time, ISO 8601 (default: now)')
      .option(
        '--cost <usd>',
        'actual cost in US dollars, when known (default: priced from the tokens)',
        nonNegativeNumber,
      )
      .option('--artifact <kind:value>', 'artifact such as commit:abc123 or pr:#42 (repeatable)', collect)
      .option('--error <message>', 'error message of a failed call')
      .option(
        '--json [source]',
        'print the stored event as JSON; "--json -" reads events from stdin instead of flags ' +
          '(one JSON object, or NDJSON lines, with camelCase keys) and prints the stored events as NDJSON',
      )
      .addHelpText(
        'after',
        examples(
          'agent-metrics record --agent coding --status success --input-tokens 1200 --output-tokens 800 \\\n' +
            '      --model claude-sonnet-4-5 --ticket AI-42 --duration 34.5 --artifact commit:abc123',
          `echo '{"agentName":"github","status":"error","errorMessage":"rate limited"}' | agent-metrics record --json -`,
        ) + RECORD_JSON_HELP,
      ),
  ).action((options) => run(async () => (await import('./commands/record.js')).runRecord(context, options)));
}

function sessionCommand(program: Command, context: Context, run: Run): void {
  const session = program
    .command('session')
    .description('start or end an orchestrator session')
    .addHelpText(
      'after',
      examples(
        'id=$(agent-metrics session start --type initializer)',
        'agent-metrics session end "$id" --status complete',
      ),
    );
  addStoreOptions(
    session
      .command('start')
      .description('start a session and print its id')
      .addOption(new Option('--type <type>', 'session type').choices(SESSION_TYPES).default('continuation'))
      .option('--id <id>', "the orchestrator's own session id (default: a new UUID)")
      .option('--json', 'print the session as JSON'),
  ).action((options) =>
    run(async () => (await import('./commands/session.js')).runSessionStart(context, options)),
  );
  addStoreOptions(
    session
      .command('end')
      .description('end a session started with `session start`')
      .argument('<id>', 'session id')
      .addOption(
        new Option('--status <status>', 'how it ended').choices(SESSION_STATUSES).default('complete'),
      )
      .option('--json', 'print the finished session as JSON'),
  ).action((id, options) =>
    run(async () => (await import('./commands/session.js')).runSessionEnd(context, id, options)),
  );
}

function inspectCommands(program: Command, context: Context, run: Run): void {
  addStoreOptions(
    program
      .command('show')
      .description('the dashboard: totals, agents, recent events and sessions')
      .option('--agent <name>', 'drill into one agent')
      .option('--limit <n>', 'agents, recent sessions and recent events to list', positiveInteger, 10)
      .option('--json', 'print the state (or, with --agent, the profile and its events) as JSON')
      .addHelpText(
        'after',
        examples(
          'agent-metrics show',
          'agent-metrics show --agent coding',
          'agent-metrics show --json | jq .total_tokens',
        ),
      ),
  ).action((options) => run(async () => (await import('./commands/show.js')).runShow(context, options)));

  addStoreOptions(
    program
      .command('stats')
      .description('storage statistics: files, sizes, counts')
      .option('--json', 'print the statistics as JSON'),
  ).action((options) => run(async () => (await import('./commands/stats.js')).runStats(context, options)));

  addStoreOptions(
    program
      .command('verify')
      .description(
        'check the main file and its backup against the format and its invariants (exit 1 on problems)',
      )
      .option(
        '--max-events <n>',
        `events cap to check (default: the project's recorded retention, else ${DEFAULT_CAPS.maxEvents})`,
        positiveInteger,
      )
      .option(
        '--max-sessions <n>',
        `sessions cap to check (default: the project's recorded retention, else ${DEFAULT_CAPS.maxSessions})`,
        positiveInteger,
      )
      .option('--json', 'print the findings as JSON')
      .addHelpText('after', examples('agent-metrics verify || agent-metrics repair --dry-run')),
  ).action((options) => run(async () => (await import('./commands/verify.js')).runVerify(context, options)));

  addStoreOptions(
    program
      .command('repair')
      .description('recover a damaged project: corrupt main file → backup; evidence kept as .corrupt-<time>')
      .option(
        '--dry-run',
        'only say what would be done (exit 1 when something would be repaired; folding the journal is routine, exit 0)',
      )
      .option('--json', 'print what was (or would be) done as JSON')
      .addHelpText('after', examples('agent-metrics repair --dry-run', 'agent-metrics repair')),
  ).action((options) => run(async () => (await import('./commands/repair.js')).runRepair(context, options)));
}

function exportCommand(program: Command, context: Context, run: Run): void {
  addStoreOptions(
    program
      .command('export')
      .description('export events, sessions or agents as JSON, NDJSON, CSV, or Prometheus metrics')
      .addOption(
        new Option('--format <format>', 'output format')
          .choices(['json', 'ndjson', 'csv', 'prometheus'])
          .makeOptionMandatory(),
      )
      .addOption(
        new Option(
          '--what <records>',
          'records to export (not with prometheus, which exports agents and totals)',
        )
          .choices(['events', 'sessions', 'agents'])
          .default('events'),
      )
      .option('--out <file>', 'write to this file atomically (temp file + rename) instead of stdout')
      // The default shown as typed (600), not as the number it is (384).
      .addOption(
        new Option('--mode <octal>', 'permissions of the --out file')
          .argParser(fileMode)
          .default(0o600, '600'),
      )
      .addHelpText(
        'after',
        examples(
          'agent-metrics export --format csv --what agents > agents.csv',
          'agent-metrics export --format prometheus --out /var/lib/node_exporter/agents.prom --mode 644',
        ),
      ),
  ).action((options, command: Command) =>
    run(async () =>
      (await import('./commands/export.js')).runExport(context, {
        ...options,
        whatGiven: command.getOptionValueSource('what') === 'cli',
        modeGiven: command.getOptionValueSource('mode') === 'cli',
      }),
    ),
  );
}

function demoCommand(program: Command, context: Context, run: Run): void {
  addStoreOptions(
    program
      .command('demo')
      .description('fill a fresh folder with a realistic multi-session, multi-agent history')
      .option('--seed <n>', 'random seed: the same seed gives the same history', nonNegativeInteger, 42)
      .option('--force', 'add the demo history even if the folder already holds a project')
      .addHelpText(
        'after',
        examples('agent-metrics demo --dir /tmp/demo && agent-metrics show --dir /tmp/demo'),
      ),
  ).action((options) => run(async () => (await import('./commands/demo.js')).runDemo(context, options)));
}

/** The command tree. Commander never exits or writes on its own: see `main()`. */
export function buildProgram(context: Context, run: Run): Command {
  const { io } = context;
  const program = new Command('agent-metrics')
    .description('Record, inspect, verify, repair and export the metrics of AI-agent orchestrators.')
    .version(version, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(text.replace(/^error: /, 'error E_USAGE: ')),
      getOutHelpWidth: () => io.columns ?? 80,
      getErrHelpWidth: () => io.columns ?? 80,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError('(add --help for usage and examples)')
    .showSuggestionAfterError()
    .addHelpText('after', PROGRAM_HELP)
    .addHelpText('afterAll', EXIT_CODES_HELP);
  recordCommand(program, context, run);
  sessionCommand(program, context, run);
  inspectCommands(program, context, run);
  exportCommand(program, context, run);
  demoCommand(program, context, run);
  return program;
}
