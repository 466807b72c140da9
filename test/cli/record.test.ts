import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEventsText } from '../../src/cli/commands/record.js';
import { MetricsStore } from '../../src/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { readState, run, snapshot } from './helpers.js';

const FLAGS = [
  '--agent',
  'coding',
  '--status',
  'error',
  '--input-tokens',
  '1200',
  '--output-tokens',
  '800',
  '--model',
  'claude-sonnet-4-5',
  '--ticket',
  'AI-42',
  '--session',
  's-1',
  '--duration',
  '34.5',
  '--started-at',
  '2026-03-01T10:00:00Z',
  '--artifact',
  'commit:abc',
  '--artifact',
  'pr:#42',
  '--error',
  'tests failed, 3 "flaky"',
  '--cost',
  '0.25',
];

/**
 * A project whose total_tokens is 500 below the largest integer the file holds exactly (one event
 * cannot get there: at most MAX_TOKENS_PER_CALL tokens each), checkpointed into the JSON file.
 */
async function nearTheLargestTotal(dir: string): Promise<void> {
  const store = new MetricsStore({ projectName: 'p', dir, durability: 'none' });
  await store.update((state) => {
    state.total_tokens = Number.MAX_SAFE_INTEGER - 500;
  });
  await store.close();
}

describe('record from flags', () => {
  it('stores the event and prints its id; the folder name is the project name', async () => {
    const dir = join(tempDir(), 'my-project');
    const { code, stdout, stderr } = await run(['record', '--dir', dir, ...FLAGS]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const state = readState(dir);
    expect(state.project_name).toBe('my-project');
    const [event] = state.events;
    expect(stdout).toBe(`${event?.event_id}\n`);
    expect(event).toMatchObject({
      agent_name: 'coding',
      status: 'error',
      input_tokens: 1200,
      output_tokens: 800,
      total_tokens: 2000,
      model_used: 'claude-sonnet-4-5',
      ticket_key: 'AI-42',
      session_id: 's-1',
      duration_seconds: 34.5,
      started_at: '2026-03-01T10:00:00.000Z',
      ended_at: '2026-03-01T10:00:34.500Z',
      artifacts: ['commit:abc', 'pr:#42'],
      error_message: 'tests failed, 3 "flaky"',
      estimated_cost_usd: 0.25,
    });
    expect(state.agents.coding?.failed_invocations).toBe(1);
  });

  it('resolves --dir against the working folder, and takes --project for a new store', async () => {
    const cwd = tempDir();
    expect((await run(['record', '--dir', 'sub', '--project', 'named', '--agent', 'a'], { cwd })).code).toBe(
      0,
    );
    expect(readState(join(cwd, 'sub')).project_name).toBe('named');
    expect((await run(['record', '--agent', 'b'], { cwd })).code).toBe(0);
    expect(readState(cwd).agents.b?.total_invocations).toBe(1);
  });

  it('exits 2 for an empty --dir (an unset variable), writing nothing in the working folder', async () => {
    const cwd = tempDir();
    const { code, stderr } = await run(['record', '--dir', '', '--agent', 'a'], { cwd });
    expect(code).toBe(2);
    expect(stderr).toContain("option '--dir <folder>' argument '' is invalid. Expected a folder");
    expect(snapshot(cwd)).toEqual({});
  });

  it('takes numbers in decimal only, and a --lock-timeout a timer can wait, writing nothing otherwise', async () => {
    const dir = tempDir();
    const refused: Array<[string[], string]> = [
      [['--input-tokens', '0x10'], 'Expected a whole number ≥ 0.'],
      [['--input-tokens', '1e3'], 'Expected a whole number ≥ 0.'],
      [['--input-tokens', ' 7 '], 'Expected a whole number ≥ 0.'],
      [['--cost', '0x10'], 'Expected a number ≥ 0'],
      [['--cost', ' 1'], 'Expected a number ≥ 0'],
      [['--lock-timeout', '2147483648'], 'Expected at most 2147483647 ms'],
    ];
    for (const [flags, message] of refused) {
      const { code, stderr } = await run(['record', '--dir', dir, '--agent', 'a', ...flags]);
      expect(code, flags.join(' ')).toBe(2);
      expect(stderr, flags.join(' ')).toContain(message);
    }
    expect(snapshot(dir)).toEqual({});
    const accepted = await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'a',
      '--input-tokens',
      '007',
      '--cost',
      '1.5e-3',
      '--lock-timeout',
      '2147483647',
    ]);
    expect(accepted.code).toBe(0);
    expect(readState(dir).events[0]).toMatchObject({ input_tokens: 7, estimated_cost_usd: 0.0015 });
  });

  it('prints the stored event as one JSON document with --json', async () => {
    const dir = tempDir();
    const { code, stdout } = await run(['record', '--dir', dir, '--agent', 'linear', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(readState(dir).events[0]);
  });

  it('exits 2 naming --agent when it is missing, and writes nothing', async () => {
    const dir = tempDir();
    const { code, stderr } = await run(['record', '--dir', dir, '--status', 'success']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error E_USAGE: --agent <name> is required/);
    expect(snapshot(dir)).toEqual({});
  });

  it('names the flag, not the field, when a value is invalid, and writes nothing', async () => {
    const dir = tempDir();
    const result = await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'a',
      '--started-at',
      'yesterday',
      '--artifact',
      'lines:lots',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^error E_INVALID_INPUT: invalid input: --started-at: expected a valid Date/,
    );
    expect(result.stderr).toContain('--artifact: expected lines:+<added>/-<removed>');
    expect(snapshot(dir)).toEqual({});
    const reversed = await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'a',
      '--started-at',
      '2026-01-02T00:00:00Z',
      '--ended-at',
      '2026-01-01T00:00:00Z',
    ]);
    expect(reversed.stderr).toContain('--ended-at: endedAt must not be before startedAt');
    expect(snapshot(dir)).toEqual({});
  });

  it('exits 3 with E_LOCK_TIMEOUT when another writer holds the lock past --lock-timeout', async () => {
    const dir = tempDir();
    const holder = new MetricsStore({ projectName: 'p', dir });
    let release!: () => void;
    let held!: () => void;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const holding = holder.update(() => {
      held();
      return new Promise<void>((resolve) => (release = resolve));
    });
    await isHeld;
    const { code, stdout, stderr } = await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'a',
      '--lock-timeout',
      '30',
    ]);
    release();
    await holding;
    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error E_LOCK_TIMEOUT: could not acquire .*\.agent_metrics\.lock within 30 ms/);
    expect(readState(dir).events).toEqual([]);
  });

  it('refuses an event given by flags that would overflow a total as bad input (exit 2), writing nothing', async () => {
    const dir = tempDir();
    await nearTheLargestTotal(dir);
    const before = snapshot(dir);
    const { code, stdout, stderr } = await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'a',
      '--input-tokens',
      '1000',
    ]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /^error E_INVALID_INPUT: invalid input: total_tokens: the event's 1000 tokens would push the project's total_tokens past 9007199254740991/,
    );
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('--dir of a command that records', () => {
  it('exits 2 when it names a file, or a file is on its path (exit 3 would be retried), and writes nothing', async () => {
    const file = join(tempDir(), 'not-a-folder');
    writeFileSync(file, 'mine');
    for (const command of [['record', '--agent', 'a'], ['session', 'start'], ['demo']]) {
      const direct = await run([...command, '--dir', file]);
      expect(direct.code, command.join(' ')).toBe(2);
      expect(direct.stderr).toBe(`error E_USAGE: --dir: ${file} is a file, not a folder\n`);
      const below = await run([...command, '--dir', join(file, 'project')]);
      expect(below.code, command.join(' ')).toBe(2);
      expect(below.stderr).toBe(
        `error E_USAGE: --dir: ${join(file, 'project')} is not a folder: a file is on its path\n`,
      );
    }
    expect(readFileSync(file, 'utf8')).toBe('mine');
    const links = tempDir();
    symlinkSync('nowhere', join(links, 'dangling'));
    symlinkSync('loop', join(links, 'loop'));
    for (const [name, message] of [
      ['dangling', ' is a symbolic link to a folder that does not exist'],
      ['dangling/project', `: ${join(links, 'dangling')} is a symbolic link to a folder that does not exist`],
      ['loop', ' is a loop of symbolic links'],
    ] as const) {
      const linked = await run(['record', '--agent', 'a', '--dir', join(links, name)]);
      expect(linked.code, name).toBe(2);
      expect(linked.stderr).toBe(`error E_USAGE: --dir: ${join(links, name)}${message}\n`);
    }
    // The commands that only read say so too.
    const looped = await run(['stats', '--dir', join(links, 'loop')]);
    expect(looped.code).toBe(2);
    expect(looped.stderr).toBe(`error E_USAGE: --dir: ${join(links, 'loop')} is a loop of symbolic links\n`);
  });
});

describe('record --json - (stdin)', () => {
  it('records one JSON object, even pretty-printed, and prints the stored event', async () => {
    const dir = tempDir();
    const stdin = JSON.stringify(
      { agentName: 'github', status: 'success', inputTokens: 5, artifacts: ['pr:#7'] },
      null,
      2,
    );
    const { code, stdout } = await run(['record', '--dir', dir, '--json', '-'], { stdin });
    expect(code).toBe(0);
    const state = readState(dir);
    expect(JSON.parse(stdout)).toEqual(state.events[0]);
    expect(state.agents.github?.prs_created).toBe(1);
  });

  it('exits 2 for bytes that are not UTF-8, naming the first, and records nothing', async () => {
    const dir = tempDir();
    const latin1 = Buffer.concat([
      Buffer.from('{"agentName":"ok","status":"success"}\n{"agentName":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('","status":"success"}\n'),
    ]);
    const { code, stdout, stderr } = await run(['record', '--dir', dir, '--json', '-'], { stdin: latin1 });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `error E_USAGE: stdin is not UTF-8 text: the bytes from offset ${latin1.indexOf(0xe9)} (0xe9) are no UTF-8 character\n`,
    );
    expect(readdirSync(dir)).toEqual([]);
    // A U+FFFD the input spells (EF BF BD) is text; the byte named is the first one that is not.
    const spelled = Buffer.concat([
      Buffer.from('{"agentName":"a\uFFFD","errorMessage":"x'),
      Buffer.from([0xe9]),
      Buffer.from('"}'),
    ]);
    const named = await run(['record', '--dir', dir, '--json', '-'], { stdin: spelled });
    expect(named.stderr).toContain(
      `the bytes from offset ${spelled.indexOf(0xe9)} (0xe9) are no UTF-8 character`,
    );
  });

  it('records NDJSON lines in order and prints one stored event per line', async () => {
    const dir = tempDir();
    const stdin =
      '{"agentName":"a","status":"success"}\n\n{"agentName":"b","status":"timeout","errorMessage":"slow – très"}\n';
    const { code, stdout } = await run(['record', '--dir', dir, '--json', '-'], { stdin });
    expect(code).toBe(0);
    const lines = stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual(readState(dir).events);
    expect(lines.map((event) => event.agent_name)).toEqual(['a', 'b']);
    expect(lines[1].error_message).toBe('slow – très');
  });

  it('writes nothing when any line is invalid, naming each bad event and field', async () => {
    const dir = tempDir();
    await run(['record', '--dir', dir, '--agent', 'seed']);
    const before = snapshot(dir);
    const stdin = '{"agentName":"a","status":"success"}\n{"agent_name":"b","status":"done"}\n';
    const { code, stdout, stderr } = await run(['record', '--dir', dir, '--json', '-'], { stdin });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('stdin event 2: agentName: required field is missing');
    expect(stderr).toContain('stdin event 2: agent_name: unknown field');
    expect(stderr).toContain("stdin event 2: status: expected one of 'success'");
    expect(snapshot(dir)).toEqual(before);
  });

  it("checks the events against the project's state too: one that would overflow a total writes none (exit 2)", async () => {
    const dir = tempDir();
    await nearTheLargestTotal(dir);
    const before = snapshot(dir);
    const stdin =
      '{"agentName":"a","status":"success","inputTokens":5}\n' +
      '{"agentName":"a","status":"success","inputTokens":1000}\n';
    const { code, stdout, stderr } = await run(['record', '--dir', dir, '--json', '-'], { stdin });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /^error E_INVALID_INPUT: invalid input: stdin event 2: total_tokens: the event's 1000 tokens would push the project's total_tokens past/,
    );
    expect(stderr).not.toContain('recorded 1 of 2');
    expect(snapshot(dir)).toEqual(before);
  });

  it('names the line of bad JSON, and refuses empty input, arrays and scalars', async () => {
    const dir = tempDir();
    const bad = await run(['record', '--dir', dir, '--json', '-'], {
      stdin: '{"agentName":"a","status":"success"}\n{oops\n',
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error E_USAGE: --json -: stdin line 2: not valid JSON/);
    for (const stdin of [
      '',
      '  \n',
      '[{"agentName":"a"}]',
      '42',
      '{"agentName":"a","status":"success"}\n7\n',
    ]) {
      const result = await run(['record', '--dir', dir, '--json', '-'], { stdin });
      expect(result.code, stdin).toBe(2);
      expect(result.stderr, stdin).toMatch(/^error E_USAGE: --json -: /);
    }
    expect(snapshot(dir)).toEqual({});
  });

  it('refuses event flags together with --json -, and --json with another value', async () => {
    const both = await run(['record', '--json', '-', '--input-tokens', '3'], { stdin: '{}' });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--input-tokens cannot be combined with --json -');
    const file = await run(['record', '--json', 'events.json']);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain(
      "--json: takes no value, or '-' to read events from stdin (got 'events.json')",
    );
  });

  it('reports how many events were recorded when a later one fails to be stored (exit 3)', async () => {
    const dir = tempDir();
    const main = join(dir, '.agent_metrics.json');
    // As soon as the first event is printed, the main file becomes unreadable (a folder: EISDIR).
    const onStdout = () => {
      if (existsSync(`${main}.first`)) return;
      renameSync(main, `${main}.first`);
      mkdirSync(main);
    };
    const stdin = '{"agentName":"a","status":"success"}\n{"agentName":"b","status":"success"}\n';
    const result = await run(['record', '--dir', dir, '--json', '-'], { stdin, onStdout });
    expect(result.code).toBe(3);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('recorded 1 of 2 events before this failure');
    expect(result.stderr).toMatch(/error E_IO: read failed for .*\.agent_metrics\.json/);
    const first = JSON.parse(readFileSync(`${main}.first`, 'utf8'));
    expect(first.events.map((event: { agent_name: string }) => event.agent_name)).toEqual(['a']);
  });
});

describe('parseEventsText', () => {
  it('reads one document or NDJSON lines', () => {
    expect(parseEventsText('{"a":1}')).toEqual([{ a: 1 }]);
    expect(parseEventsText('{"a":1}\r\n{"a":2}\r\n')).toEqual([{ a: 1 }, { a: 2 }]);
  });
});

describe('session', () => {
  it('starts a session, records into it, and ends it with its totals', async () => {
    const dir = tempDir();
    const start = await run(['session', 'start', '--dir', dir, '--type', 'initializer']);
    expect(start.code).toBe(0);
    const id = start.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'coding',
      '--session',
      id,
      '--input-tokens',
      '10',
      '--ticket',
      'AI-1',
    ]);
    const end = await run(['session', 'end', id, '--dir', dir, '--status', 'error']);
    expect(end.code).toBe(0);
    expect(end.stdout).toMatch(
      new RegExp(`^ended session ${id} \\(#1, error\\): coding, 10 tokens, \\$0\\.0000`),
    );
    expect(readState(dir).sessions[0]).toMatchObject({
      session_id: id,
      session_type: 'initializer',
      status: 'error',
      agents_invoked: ['coding'],
      tickets_worked: ['AI-1'],
    });
  });

  it('takes the orchestrator id with --id and prints sessions as JSON with --json', async () => {
    const dir = tempDir();
    const start = await run(['session', 'start', '--dir', dir, '--id', 'loop-7', '--json']);
    expect(JSON.parse(start.stdout)).toMatchObject({
      session_id: 'loop-7',
      session_number: 1,
      session_type: 'continuation',
    });
    const end = await run(['session', 'end', 'loop-7', '--dir', dir, '--json']);
    expect(JSON.parse(end.stdout)).toEqual(readState(dir).sessions[0]);
    expect(JSON.parse(end.stdout).status).toBe('complete');
  });

  it('exits 2 for an unknown or already ended session, and for a duplicate id', async () => {
    const dir = tempDir();
    const unknown = await run(['session', 'end', 'nope', '--dir', dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error E_NOT_FOUND: session nope is not in progress/);
    expect(snapshot(dir)).toEqual({}); // no lock file either
    const newFolder = join(tempDir(), 'new');
    expect((await run(['session', 'end', 'nope', '--dir', newFolder])).code).toBe(2);
    expect(existsSync(newFolder)).toBe(false);
    await run(['session', 'start', '--dir', dir, '--id', 's']);
    expect((await run(['session', 'start', '--dir', dir, '--id', 's'])).stderr).toMatch(/^error E_CONFLICT/);
    await run(['session', 'end', 's', '--dir', dir]);
    const again = await run(['session', 'end', 's', '--dir', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error E_CONFLICT: session s has already ended/);
  });

  it('rejects a bad --type or --status before writing', async () => {
    const dir = tempDir();
    expect((await run(['session', 'start', '--dir', dir, '--type', 'first'])).code).toBe(2);
    expect((await run(['session', 'end', 'x', '--dir', dir, '--status', 'done'])).stderr).toContain(
      'Allowed choices are continue, error, complete',
    );
    expect(existsSync(join(dir, '.agent_metrics.json'))).toBe(false);
  });
});
