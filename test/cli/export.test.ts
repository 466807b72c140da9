import { execFileSync } from 'node:child_process';
import {
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toCsv } from '../../src/cli/format/csv.js';
import { escapeLabelValue, toPrometheus } from '../../src/cli/format/prometheus.js';
import { createEmptyState } from '../../src/index.js';
import { makeProfile } from '../helpers/builders.js';
import { tempDir } from '../helpers/temp-dir.js';
import { pythonProject, readState, run } from './helpers.js';

/** A small RFC 4180 reader, to check what the writer produced by reading it back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(cell);
      cell = '';
    } else if (char === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += char;
  }
  return rows;
}

describe('export', () => {
  it('exports events as a JSON array and as NDJSON, as stored', async () => {
    const dir = pythonProject();
    const { events } = readState(dir);
    const json = await run(['export', '--dir', dir, '--format', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(events);
    const ndjson = await run(['export', '--dir', dir, '--format', 'ndjson', '--what', 'events']);
    expect(
      ndjson.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual(events);
  });

  it('exports sessions and agents (sorted by name)', async () => {
    const dir = pythonProject();
    const state = readState(dir);
    const sessions = JSON.parse(
      (await run(['export', '--dir', dir, '--format', 'json', '--what', 'sessions'])).stdout,
    );
    expect(sessions).toEqual(state.sessions);
    const agents = JSON.parse(
      (await run(['export', '--dir', dir, '--format', 'json', '--what', 'agents'])).stdout,
    );
    expect(agents.map((agent: { agent_name: string }) => agent.agent_name)).toEqual([
      'coding',
      'github',
      'linear',
    ]);
    expect(agents[0]).toEqual(state.agents.coding);
  });

  it('writes CSV with a header row, CRLF rows and RFC 4180 quoting', async () => {
    const dir = tempDir();
    const message = 'failed: "quoted", with comma\nand a second line';
    await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'coding',
      '--status',
      'error',
      '--error',
      message,
      '--artifact',
      'commit:a',
      '--artifact',
      'pr:#1',
    ]);
    const { code, stdout } = await run(['export', '--dir', dir, '--format', 'csv']);
    expect(code).toBe(0);
    expect(stdout).toContain('"failed: ""quoted"", with comma\nand a second line"');
    const [header, row, ...rest] = parseCsv(stdout);
    expect(rest).toEqual([]);
    expect(header?.slice(0, 3)).toEqual(['event_id', 'agent_name', 'session_id']);
    const record = Object.fromEntries((header ?? []).map((column, index) => [column, row?.[index]]));
    expect(record).toMatchObject({
      agent_name: 'coding',
      status: 'error',
      error_message: message,
      artifacts: 'commit:a;pr:#1',
    });
    expect(record.event_id).toBe(readState(dir).events[0]?.event_id);
  });

  it('quotes a CSV cell that holds a lone line feed or carriage return (readers end a record there)', () => {
    const csv = toCsv(
      [{ event_id: 'e1', agent_name: 'coding', error_message: 'line one\nline two', ticket_key: 'AI-1\r' }],
      'events',
    );
    const [, row] = csv.split('\r\n');
    expect(row).toContain('"line one\nline two"');
    expect(row).toContain('"AI-1\r"');
  });

  it('writes CSV of sessions and agents with their columns, and only a header when empty', async () => {
    const dir = pythonProject();
    const sessions = parseCsv(
      (await run(['export', '--dir', dir, '--format', 'csv', '--what', 'sessions'])).stdout,
    );
    expect(sessions).toHaveLength(7);
    expect(sessions[1]?.[6]).toBe('github;coding;linear');
    const agents = parseCsv(
      (await run(['export', '--dir', dir, '--format', 'csv', '--what', 'agents'])).stdout,
    );
    expect(agents[0]).toContain('cost_per_success_usd');
    expect(agents.map((row) => row[0])).toEqual(['agent_name', 'coding', 'github', 'linear']);
    expect(toCsv([], 'sessions')).toBe(
      'session_id,session_number,session_type,started_at,ended_at,status,agents_invoked,total_tokens,total_cost_usd,tickets_worked\r\n',
    );
  });

  it('writes the Prometheus text format: HELP and TYPE once per family, counters _total, gauges per agent', async () => {
    const dir = pythonProject();
    const { code, stdout } = await run(['export', '--dir', dir, '--format', 'prometheus']);
    expect(code).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    const lines = stdout.trimEnd().split('\n');
    const sample = /^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\.)*",?)*)\} (-?[\d.e+-]+|NaN|[+-]Inf)$/;
    const types = new Map<string, string>();
    for (const line of lines) {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        expect(types.has(name as string), name).toBe(false);
        types.set(name as string, type as string);
      } else if (!line.startsWith('# HELP ')) {
        const match = sample.exec(line);
        expect(match, line).not.toBeNull();
        expect(types.has(match?.[1] as string), line).toBe(true);
      }
    }
    for (const [name, type] of types) expect(name.endsWith('_total'), name).toBe(type === 'counter');
    expect(stdout).toContain('agent_metrics_sessions_total{project="demo-orchestrator"} 6\n');
    expect(stdout).toContain(
      'agent_metrics_agent_invocations_total{project="demo-orchestrator",agent="coding"} 12\n',
    );
    expect(stdout).toContain(
      'agent_metrics_agent_success_ratio{project="demo-orchestrator",agent="coding"} 0.75\n',
    );
    expect(stdout).toMatch(
      /agent_metrics_agent_contributions_total\{project="demo-orchestrator",agent="coding",kind="commits_made"\} \d+\n/,
    );
    expect(stdout).toContain(
      '# HELP agent_metrics_agent_tokens_total Input plus output tokens used by the agent.\n',
    );
  });

  it('escapes label values, and leaves out the last-active gauge of an agent that never finished', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const state = createEmptyState('my "quoted" \\ project\nx');
    state.agents = { 'odd"name': makeProfile({ agent_name: 'odd"name', last_active: '' }) };
    const text = toPrometheus(state);
    expect(text).toContain(
      'agent_metrics_agent_invocations_total{project="my \\"quoted\\" \\\\ project\\nx",agent="odd\\"name"} 1\n',
    );
    expect(text).toMatch(
      /# TYPE agent_metrics_agent_last_active_timestamp_seconds gauge\n(?!agent_metrics_agent_last_active)/,
    );
  });

  it('writes --out atomically with the given mode, and reports on stdout', async () => {
    const dir = pythonProject();
    const out = join(tempDir(), 'agents.prom');
    writeFileSync(out, 'old contents');
    const { code, stdout } = await run([
      'export',
      '--dir',
      dir,
      '--format',
      'prometheus',
      '--out',
      out,
      '--mode',
      '644',
    ]);
    expect(code).toBe(0);
    expect(stdout).toBe(`wrote metrics (prometheus) to ${out}\n`);
    expect(readFileSync(out, 'utf8')).toBe(
      (await run(['export', '--dir', dir, '--format', 'prometheus'])).stdout,
    );
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const cwd = tempDir();
    const csv = await run(['export', '--dir', dir, '--format', 'csv', '--what', 'agents', '--out', 'a.csv'], {
      cwd,
    });
    expect(csv.stdout).toBe(`wrote 3 agents (csv) to ${join(cwd, 'a.csv')}\n`);
    expect(statSync(join(cwd, 'a.csv')).mode & 0o777).toBe(0o600);
  });

  it('exits 2 for --what with prometheus, a bad --format or --mode', async () => {
    const dir = pythonProject();
    const what = await run(['export', '--dir', dir, '--format', 'prometheus', '--what', 'events']);
    expect(what.code).toBe(2);
    expect(what.stderr).toContain('error E_USAGE: --what cannot be used with --format prometheus');
    const format = await run(['export', '--dir', dir, '--format', 'xml']);
    expect(format.stderr).toContain('Allowed choices are json, ndjson, csv, prometheus');
    const mode = await run(['export', '--dir', dir, '--format', 'csv', '--mode', 'rw']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('Expected octal permissions such as 600 or 644.');
    const modeAlone = await run(['export', '--dir', dir, '--format', 'csv', '--mode', '644']);
    expect(modeAlone.code).toBe(2);
    expect(modeAlone.stdout).toBe('');
    expect(modeAlone.stderr).toBe(
      'error E_USAGE: --mode sets the permissions of the --out file, and no --out was given\n',
    );
  });

  it("exits 2 for an --out that is one of the project's files, or another name of one, and writes nothing", async () => {
    const dir = pythonProject();
    const main = join(dir, '.agent_metrics.json');
    const before = readFileSync(main);
    const elsewhere = join(tempDir(), 'state-link.json');
    linkSync(main, elsewhere);
    const files = readdirSync(dir).sort();
    const refused: Array<[string, string]> = [
      ['.agent_metrics.json', '.agent_metrics.json'],
      ['.agent_metrics.json.bak', '.agent_metrics.json.bak'],
      ['.agent_metrics.journal', '.agent_metrics.journal'],
      [elsewhere, '.agent_metrics.json'],
    ];
    for (const [out, name] of refused) {
      const { code, stderr, stdout } = await run(
        ['export', '--dir', dir, '--format', 'ndjson', '--out', out],
        {
          cwd: dir,
        },
      );
      expect(code).toBe(2);
      expect(stderr).toMatch(/^error E_USAGE: --out: /);
      expect(stderr).toContain(`is the project's file ${name}; export to another file`);
      expect(stdout).toBe('');
    }
    expect(readFileSync(main).equals(before)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(files);
  });

  it('writes --out through a symbolic link to the file it names, and refuses a FIFO, a folder or a dangling link', async () => {
    const dir = pythonProject();
    const out = tempDir();
    writeFileSync(join(out, 'real.prom'), 'old contents');
    symlinkSync('real.prom', join(out, 'link.prom'));
    const linked = await run(['export', '--dir', dir, '--format', 'prometheus', '--out', 'link.prom'], {
      cwd: out,
    });
    expect(linked.code).toBe(0);
    expect(lstatSync(join(out, 'link.prom')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(out, 'real.prom'), 'utf8')).toBe(
      (await run(['export', '--dir', dir, '--format', 'prometheus'])).stdout,
    );

    execFileSync('mkfifo', [join(out, 'pipe')]);
    mkdirSync(join(out, 'folder'));
    symlinkSync('nowhere', join(out, 'dangling.prom'));
    symlinkSync('loop.prom', join(out, 'loop.prom'));
    const refused: Array<[string, string]> = [
      [
        'pipe',
        'is a FIFO, which export would replace with a file; to write into it, leave out --out and redirect stdout',
      ],
      ['folder', 'is a folder; give the path of a file'],
      ['dangling.prom', 'is a symbolic link to a file that does not exist; export to the file itself'],
      ['loop.prom', 'is a loop of symbolic links; export to the file itself'],
    ];
    for (const [name, message] of refused) {
      const { code, stderr } = await run(['export', '--dir', dir, '--format', 'csv', '--out', name], {
        cwd: out,
      });
      expect(code).toBe(2);
      expect(stderr).toBe(`error E_USAGE: --out: ${join(out, name)} ${message}\n`);
    }
    expect(lstatSync(join(out, 'pipe')).isFIFO()).toBe(true);
    expect(lstatSync(join(out, 'dangling.prom')).isSymbolicLink()).toBe(true);
    expect(readdirSync(out).sort()).toEqual([
      'dangling.prom',
      'folder',
      'link.prom',
      'loop.prom',
      'pipe',
      'real.prom',
    ]);
  });

  it('exits 3 when --out cannot be written, leaving no temp file', async () => {
    const dir = pythonProject();
    const target = join(tempDir(), 'missing-folder', 'x.csv');
    const { code, stderr } = await run(['export', '--dir', dir, '--format', 'csv', '--out', target]);
    expect(code).toBe(3);
    expect(stderr).toMatch(/^error E_IO: create temp file failed/);
  });
});
