import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { AgentMetrics, MetricsStore } from '../../src/index.js';
import { encodeLine } from '../../src/store/journal-format.js';
import { journalLines } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FIXTURE_DIR, pythonProject, readState, run, snapshot } from './helpers.js';

const MAIN = '.agent_metrics.json';
const BACKUP = '.agent_metrics.json.bak';
const JOURNAL = '.agent_metrics.journal';

function corrupt(dir: string, name: string, text = '{"version": 1, "events": [') {
  writeFileSync(join(dir, name), text);
}

// biome-ignore lint/suspicious/noExplicitAny: free-form edits of raw JSON, to make it invalid on purpose
function editState(dir: string, name: string, edit: (state: Record<string, any>) => void) {
  const state = JSON.parse(readFileSync(join(dir, name), 'utf8'));
  edit(state);
  writeFileSync(join(dir, name), JSON.stringify(state));
}

describe('verify', () => {
  it('exits 0 on the files written by the Python implementation', async () => {
    const dir = pythonProject();
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^main +.*\.agent_metrics\.json +ok$/m);
    expect(stdout).toMatch(/^backup +.*\.agent_metrics\.json\.bak +ok$/m);
  });

  it('exits 1 and prints each schema problem with its path, for main and backup', async () => {
    const dir = pythonProject();
    editState(dir, MAIN, (state) => {
      state.events[3].status = 'exploded';
      delete state.sessions[1].session_type;
    });
    corrupt(dir, BACKUP, '');
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^main .* 2 problems$/m);
    expect(stdout).toMatch(/^ {2}main: events\[3\]\.status: .*success/m);
    expect(stdout).toContain('  main: sessions[1].session_type: ');
    expect(stdout).toContain('  backup: (file): empty file');
    expect(stdout).toContain(`to see what repair would do: agent-metrics repair --dry-run --dir ${dir}`);
  });

  it('reports invariants (with the caps given) and bad encodings', async () => {
    const dir = pythonProject();
    editState(dir, MAIN, (state) => {
      state.total_tokens += 1;
      state.events[1].event_id = state.events[0].event_id;
    });
    writeFileSync(join(dir, BACKUP), Buffer.from([0x7b, 0xff, 0x7d]));
    const { code, stdout } = await run(['verify', '--dir', dir, '--json', '--max-events', '40']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.ok).toBe(false);
    const [main, backup] = report.files;
    expect(main.status).toBe('valid');
    expect(main.issues.map((issue: { path: string }) => issue.path)).toEqual([
      'events',
      'events[1].event_id',
      'total_tokens',
    ]);
    expect(backup).toMatchObject({
      file: 'backup',
      status: 'corrupt',
      issues: [{ path: '(file)', message: 'not valid UTF-8' }],
    });
    // not a corruption: repair cannot help, so it is not suggested
    expect((await run(['verify', '--dir', pythonProjectWithBadTotals()])).stdout).not.toContain('repair');
  });

  it('exits 1 when there is no main file; a missing backup alone is fine', async () => {
    const empty = await run(['verify', '--dir', tempDir()]);
    expect(empty.code).toBe(1);
    expect(empty.stdout).toMatch(/^main .* 1 problem$/m);
    expect(empty.stdout).toContain('  main: (file): missing');
    const dir = tempDir();
    await run(['record', '--dir', dir, '--agent', 'a']);
    const fresh = await run(['verify', '--dir', dir, '--json']);
    expect(fresh.code).toBe(0);
    expect(JSON.parse(fresh.stdout).files[1]).toMatchObject({ status: 'missing', issues: [] });
  });

  it('exits 3 when a file cannot be read', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, MAIN));
    const { code, stderr } = await run(['verify', '--dir', dir]);
    expect(code).toBe(3);
    expect(stderr).toMatch(/^error E_IO: read failed for .*\.agent_metrics\.json: EISDIR/);
  });
});

function pythonProjectWithBadTotals(): string {
  const dir = pythonProject();
  editState(dir, MAIN, (state) => {
    state.total_tokens += 1;
  });
  return dir;
}

describe('repair', () => {
  it('does nothing to a healthy project, and says so', async () => {
    const dir = pythonProject();
    const before = snapshot(dir);
    for (const flags of [[], ['--dry-run']]) {
      const { code, stdout } = await run(['repair', '--dir', dir, ...flags]);
      expect(code).toBe(0);
      expect(stdout).toBe(`nothing to repair in ${dir}\n`);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('restores a corrupt main file from the backup, keeping the evidence; --dry-run first touches nothing', async () => {
    const dir = pythonProject();
    corrupt(dir, MAIN);
    const before = snapshot(dir);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('repair would, in');
    expect(dry.stdout).toContain('- the main file is corrupt ((file): not valid JSON');
    expect(dry.stdout).toContain(
      'restore it from the backup (35 events, 5 sessions), keeping the corrupt file',
    );
    expect(snapshot(dir)).toEqual(before);

    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^- restored-from-backup: not valid JSON.*; corrupt main file kept as .*\.corrupt-\d{8}T\d{6}\.\d{3}Z$/m,
    );
    expect(readState(dir).total_sessions).toBe(5);
    const kept = readdirSync(dir).filter((name) => name.startsWith(`${MAIN}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(dir, kept[0] as string), 'utf8')).toBe('{"version": 1, "events": [');
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });

  it('--dry-run says a restored backup is brought forward from .journal.bak and the journal, as repair then does', async () => {
    const dir = tempDir();
    const store = new MetricsStore({ projectName: 'p', dir, checkpointIdleMs: 0 });
    const metrics = new AgentMetrics({ store, strict: true });
    await metrics.recordEvent({ agentName: 'a', status: 'success' });
    await store.checkpoint(); // .bak: empty; main: 1 event
    await metrics.recordEvent({ agentName: 'a', status: 'success' });
    await store.checkpoint(); // .bak: 1 event; .journal.bak: the second
    await metrics.recordEvent({ agentName: 'a', status: 'success' }); // in the journal
    await store.close({ checkpoint: false });
    writeFileSync(join(dir, MAIN), '{"torn');
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.stdout.replace(/\s+/g, ' ')).toContain(
      'restore it from the backup (1 events, 0 sessions, then the changes made since, from .agent_metrics.journal.bak and the journal, where they continue it)',
    );
    expect((await run(['repair', '--dir', dir])).code).toBe(0);
    expect(readState(dir).events).toHaveLength(3);
  });

  it('restores a missing main file from the backup', async () => {
    const dir = pythonProject();
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, MAIN));
    const dry = JSON.parse((await run(['repair', '--dir', dir, '--dry-run', '--json'])).stdout);
    expect(dry).toMatchObject({ dryRun: true, steps: [{ action: 'restore-from-backup' }] });
    expect(dry.steps[0].detail).toMatch(
      /^the main file is missing: restore it from the backup \(35 events, 5 sessions\)$/,
    );
    const done = JSON.parse((await run(['repair', '--dir', dir, '--json'])).stdout);
    expect(done).toMatchObject({ dryRun: false, steps: [{ action: 'recovered' }] });
    expect(done.steps[0].detail).toBe('restored-from-backup: main file missing');
    expect(readState(dir).events).toHaveLength(35);
  });

  it('starts fresh when neither file is usable, keeping both as evidence', async () => {
    const dir = pythonProject();
    corrupt(dir, MAIN);
    editState(dir, BACKUP, (state) => {
      state.version = 'one';
    });
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.stdout).toContain('the main file is corrupt ((file): not valid JSON');
    expect(dry.stdout).toContain('and the backup is corrupt (version: ');
    expect(dry.stdout).toContain('start from an empty state');
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /started-fresh: .*; backup not used: does not match the format.*; corrupt backup kept as /,
    );
    expect(readState(dir).events).toEqual([]);
    expect(readdirSync(dir).filter((name) => name.includes('.corrupt-'))).toHaveLength(2);
  });

  it('starts fresh when the main file is missing and the backup corrupt', async () => {
    const dir = tempDir();
    corrupt(dir, BACKUP);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.stdout).toContain('- the main file is missing and the backup is corrupt');
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain('- wrote an empty state as the new main file');
    expect(existsSync(join(dir, BACKUP))).toBe(false);
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });

  it('replaces a corrupt backup with the current main file, keeping the corrupt one', async () => {
    const dir = pythonProject();
    corrupt(dir, BACKUP);
    const mainBefore = readState(dir);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('the backup is corrupt ((file): not valid JSON');
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^- corrupt backup kept as .*\.agent_metrics\.json\.bak\.corrupt-\S+; the main file is the new backup$/m,
    );
    const backup = JSON.parse(readFileSync(join(dir, BACKUP), 'utf8'));
    expect(backup).toEqual(mainBefore);
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });

  it('never moves a corrupt backup over older evidence with the same timestamp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date('2026-01-02T03:04:05.678Z'));
      const dir = pythonProject();
      const older = join(dir, `${BACKUP}.corrupt-20260102T030405.678Z`);
      writeFileSync(older, 'older evidence');
      corrupt(dir, BACKUP);
      const { code, stdout } = await run(['repair', '--dir', dir]);
      expect(code).toBe(0);
      expect(stdout).toContain(`- corrupt backup kept as ${older}-2; the main file is the new backup`);
      expect(readFileSync(older, 'utf8')).toBe('older evidence');
      expect(readFileSync(`${older}-2`, 'utf8')).toBe('{"version": 1, "events": [');
    } finally {
      vi.useRealTimers();
    }
  });

  it('removes temp files left by crashed writers', async () => {
    const dir = pythonProject();
    writeFileSync(join(dir, `${MAIN}.tmp-99999-abcdef`), 'half a fi');
    const stats = JSON.parse((await run(['stats', '--dir', dir, '--json'])).stdout);
    expect(stats.tempFiles).toEqual([join(dir, `${MAIN}.tmp-99999-abcdef`)]);
    expect((await run(['repair', '--dir', dir, '--dry-run'])).stdout).toContain('remove 1 temp file(s)');
    const { stdout } = await run(['repair', '--dir', dir]);
    expect(stdout).toContain('- removed 1 temp file(s) left by writers that crashed');
    expect(existsSync(join(dir, `${MAIN}.tmp-99999-abcdef`))).toBe(false);
  });

  it('leaves the temp file of a live writer alone, and neither stats nor repair --dry-run counts it', async () => {
    const dir = pythonProject();
    // A pid that is alive for the whole test: the process that runs this test file's worker.
    const live = join(dir, `${MAIN}.tmp-${process.ppid}-abcdef`);
    writeFileSync(live, 'being written');
    expect(JSON.parse((await run(['stats', '--dir', dir, '--json'])).stdout).tempFiles).toEqual([]);
    const dryRun = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).not.toContain('temp file');
    expect((await run(['repair', '--dir', dir])).stdout).not.toContain('temp file');
    expect(existsSync(live)).toBe(true);
  });

  it('exits 3 when the main file cannot be read', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, MAIN));
    expect((await run(['repair', '--dir', dir])).code).toBe(3);
  });

  it('leaves consistency problems of a readable main file alone, and says so', async () => {
    const dir = pythonProjectWithBadTotals();
    const before = snapshot(dir);
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain(`nothing to repair in ${dir}\nnote: the main file has 1 consistency problem(s)`);
    expect(snapshot(dir)).toEqual(before);
    const json = JSON.parse((await run(['repair', '--dir', dir, '--dry-run', '--json'])).stdout);
    expect(json.notRepaired).toEqual([
      { path: 'total_tokens', message: expect.stringContaining('sum over agents') },
    ]);
  });
});

/**
 * A Python-written project, then `lines` + 1 events of agent `coding` (tickets T-0 … T-<lines>)
 * recorded without a checkpoint after the first: the JSON file holds T-0, the journal T-1 onwards.
 */
async function journalProject(lines: number): Promise<string> {
  const dir = pythonProject();
  const metrics = new AgentMetrics({ projectName: 'p', dir, checkpointIdleMs: 0, strict: true });
  for (let n = 0; n <= lines; n++) {
    await metrics.recordEvent({
      agentName: 'coding',
      status: 'success',
      ticketKey: `T-${n}`,
      inputTokens: 100,
    });
  }
  return dir; // not closed: closing would fold the journal
}

/** Flips one bit inside the JSON of change line `index` (1 = the first after the header). */
function damageLine(dir: string, index: number): number {
  const path = join(dir, JOURNAL);
  const data = readFileSync(path);
  const starts = [0];
  for (let at = data.indexOf(0x0a); at >= 0 && at < data.length - 1; at = data.indexOf(0x0a, at + 1)) {
    starts.push(at + 1);
  }
  const start = starts[index] as number;
  const middle = start + Math.floor(((starts[index + 1] as number) - start) / 2);
  data[middle] = (data[middle] as number) ^ 0x01;
  writeFileSync(path, data);
  return start;
}

const tickets = (dir: string) =>
  readState(dir)
    .events.map((event) => event.ticket_key)
    .filter((key) => key.startsWith('T-'));

describe('verify: the journal', () => {
  it('reports a journal that continues the main file with its change lines, and checks the state with them', async () => {
    const dir = await journalProject(3);
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^main +.*\.agent_metrics\.json +ok \(checked with the journal's 3 change lines\)$/m,
    );
    expect(stdout).toMatch(
      /^journal +.*\.agent_metrics\.journal +ok: 3 change lines not yet folded into the main file$/m,
    );
    const json = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout);
    expect(json.ok).toBe(true);
    expect(json.journal).toMatchObject({
      file: 'journal',
      status: 'ok',
      changes: 3,
      tornBytes: 0,
      issues: [],
    });
    expect(json.files[0].journalChanges).toBe(3);
  });

  it('checks the invariants of the main file with the journal applied', async () => {
    const dir = await journalProject(1);
    // A change the store accepts (it checks only what changed) but that breaks a total.
    const store = new MetricsStore({ projectName: 'p', dir, checkpointIdleMs: 0 });
    await store.update((state) => {
      state.total_tokens += 1;
    });
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^main .* 1 problem \(checked with the journal's 2 change lines\)$/m);
    expect(stdout).toContain('  main: total_tokens: expected the sum over agents');
  });

  it('reports a damaged line inside the journal as a problem, and writes nothing', async () => {
    const dir = await journalProject(3);
    const offset = damageLine(dir, 2);
    const before = snapshot(dir);
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^journal +.* 1 problem$/m);
    expect(stdout).toContain(
      `  journal: byte ${offset}: 1 damaged line (first: checksum mismatch), skipped by readers; 2 change lines intact`,
    );
    expect(stdout).toContain(`to see what repair would do: agent-metrics repair --dry-run --dir ${dir}`);
    const json = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout);
    expect(json.journal).toMatchObject({ status: 'damaged', damaged: { count: 1, firstOffset: offset } });
    expect(snapshot(dir)).toEqual(before);
  });

  it('notes a torn last line without counting it as a problem', async () => {
    const dir = await journalProject(2);
    const torn = '0badc0de {"caps":{"max_ev'; // a write cut short: no newline
    // Where the next line goes: after the lines (over the NUL bytes reserved there, if any).
    const path = join(dir, JOURNAL);
    const lines = journalLines(path);
    const reserved = readFileSync(path).subarray(lines.length + torn.length);
    writeFileSync(path, Buffer.concat([lines, Buffer.from(torn), reserved]));
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^journal +.* ok: 2 change lines not yet folded into the main file$/m);
    expect(stdout).toContain(
      `  note: journal: ${torn.length} bytes of an interrupted write at its end (ignored; the next write drops them)`,
    );
    const json = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout);
    expect(json.journal).toMatchObject({
      status: 'torn-tail',
      tornBytes: torn.length,
      changes: 2,
      issues: [],
    });
  });

  it('verify notes (exit 0) a torn end holding a complete line; repair keeps a copy of the journal and folds the rest', async () => {
    const dir = await journalProject(3);
    const path = join(dir, JOURNAL);
    const lines = journalLines(path);
    const data = readFileSync(path);
    const t2End = lines.lastIndexOf(0x0a, lines.length - 2);
    const t2Start = lines.lastIndexOf(0x0a, t2End - 1) + 1;
    data[t2End] = 0x78; // T-2's newline: T-3 runs into it, and both are the torn end
    writeFileSync(path, data);
    const tornBytes = lines.length - t2Start;
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^journal +.* ok: 1 change line not yet folded into the main file$/m);
    expect(stdout).toContain(
      `  note: journal: ${tornBytes} bytes at its end that readers ignore, 1 complete line among them (damaged, or after damaged bytes: a write a power cut interrupted, or damage to its last lines); the next write keeps a copy of the journal and folds it into the main file`,
    );
    const json = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout);
    expect(json.journal).toMatchObject({ status: 'torn-tail', tornBytes, tornLines: 1, changes: 1 });

    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      `- leave out the ${tornBytes} bytes at the journal's end, 1 complete line(s) among them, keeping a copy of the journal as ${JOURNAL}.corrupt-<time>`,
    );
    const dryJson = JSON.parse((await run(['repair', '--dir', dir, '--dry-run', '--json'])).stdout);
    expect(dryJson.steps.map((step: { action: string }) => step.action)).toEqual([
      'leave-out-journal-tail',
      'fold-journal',
    ]);
    const { stdout: repaired } = await run(['repair', '--dir', dir]);
    const kept = readdirSync(dir).filter((name) => name.startsWith(`${JOURNAL}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(dir, kept[0] as string)).equals(data)).toBe(true);
    expect(repaired).toContain(`; copy of the journal kept as ${join(dir, kept[0] as string)}`);
    expect(tickets(dir)).toEqual(['T-0', 'T-1']);
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });

  it('reports a journal that does not continue the main file as a problem (unless it holds no change)', async () => {
    const dir = await journalProject(1);
    writeFileSync(join(dir, JOURNAL), readFileSync(join(await journalProject(2), JOURNAL)));
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(1);
    expect(stdout).toContain(
      '  journal: (header): does not continue the main file: its 2 change lines would be set aside, not applied',
    );
    // Checked without the foreign lines, as a load would use the main file.
    expect(stdout).toMatch(/^main +.* ok$/m);

    const header = readFileSync(join(dir, JOURNAL)).subarray(
      0,
      readFileSync(join(dir, JOURNAL)).indexOf(0x0a) + 1,
    );
    writeFileSync(join(dir, JOURNAL), header);
    const empty = await run(['verify', '--dir', dir, '--json']);
    expect(empty.code).toBe(0);
    expect(JSON.parse(empty.stdout).journal).toMatchObject({
      status: 'does-not-continue',
      changes: 0,
      issues: [],
    });

    // No change line, but a complete one in its torn end: set aside as evidence, so a problem.
    const line = encodeLine(JSON.stringify({ caps: { max_events: 500, max_sessions: 50 }, set: { n: 1 } }));
    writeFileSync(join(dir, JOURNAL), Buffer.concat([header, Buffer.from('torn'), line]));
    const torn = await run(['verify', '--dir', dir]);
    expect(torn.code).toBe(1);
    expect(torn.stdout).toContain(
      '  journal: (header): does not continue the main file: its 0 change lines and 1 complete line(s) of its torn end would be set aside, not applied',
    );
    expect((await run(['repair', '--dir', dir, '--dry-run'])).stdout).toContain(
      `- the journal does not continue the main file: set it aside as ${JOURNAL}.corrupt-<time>, its 0 change lines and 1 complete line(s) of its torn end not applied`,
    );
  });

  it('says the journal cannot be checked when the main file is corrupt, without an extra problem', async () => {
    const dir = await journalProject(1);
    corrupt(dir, MAIN);
    const { code, stdout } = await run(['verify', '--dir', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^journal +.* not checked$/m);
    expect(stdout).toContain('note: journal: cannot be checked: there is no usable main file');
    const json = JSON.parse((await run(['verify', '--dir', dir, '--json'])).stdout);
    expect(json.journal).toMatchObject({ status: 'not-checked', issues: [] });
  });
});

describe('write commands and the journal', () => {
  it('a write that repairs the journal says a copy of the journal was kept, not a corrupt main file', async () => {
    const dir = await journalProject(3);
    damageLine(dir, 2);
    const { code, stderr } = await run(['record', '--dir', dir, '--agent', 'coding']);
    expect(code).toBe(0);
    const kept = readdirSync(dir).filter((name) => name.startsWith(`${JOURNAL}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(stderr).toContain(`journal-repaired: 1 damaged journal line(s) skipped`);
    expect(stderr).toContain(`copy of the journal kept as ${join(dir, kept[0] as string)}`);
    expect(stderr).not.toContain('corrupt main file');
  });
});

describe('repair: the journal', () => {
  it('folds a journal with a damaged line: the main file alone then holds the good lines', async () => {
    const dir = await journalProject(3);
    const offset = damageLine(dir, 2);
    const damaged = readFileSync(join(dir, JOURNAL));
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain(`repaired ${dir}:`);
    expect(stdout).toMatch(
      new RegExp(
        `^- journal-repaired: 1 damaged journal line\\(s\\) skipped \\(first at byte ${offset}: checksum mismatch\\); copy of the journal kept as (\\S+)$`,
        'm',
      ),
    );
    expect(stdout).toContain("- folded the journal's 2 change line(s) into the main file");
    const kept = readdirSync(dir).filter((name) => name.startsWith(`${JOURNAL}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(dir, kept[0] as string)).equals(damaged)).toBe(true);

    // The JSON file alone, as the Python dashboard reads it.
    expect(tickets(dir)).toEqual(['T-0', 'T-1', 'T-3']);
    // Events are journaled as operations: the skipped one counts nowhere, as if never recorded.
    expect(readState(dir).agents.coding?.total_invocations).toBe(
      JSON.parse(readFileSync(join(FIXTURE_DIR, MAIN), 'utf8')).agents.coding.total_invocations + 3,
    );
    const verify = await run(['verify', '--dir', dir, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout).journal).toMatchObject({ status: 'ok', changes: 0 });
    // `stats` lists the journal's kept copy with the other quarantined files.
    const stats = JSON.parse((await run(['stats', '--dir', dir, '--json'])).stdout);
    expect(stats.quarantinedFiles).toEqual([join(dir, kept[0] as string)]);
  });

  it('--dry-run lists what the journal check found and writes nothing', async () => {
    const dir = await journalProject(3);
    const offset = damageLine(dir, 2);
    const before = snapshot(dir);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain(
      `- skip 1 damaged journal line(s) (first at byte ${offset}: checksum mismatch), keeping a copy of the journal as ${JOURNAL}.corrupt-<time>`,
    );
    expect(dry.stdout).toContain("- fold the journal's 2 change lines into the main file");
    const json = JSON.parse((await run(['repair', '--dir', dir, '--dry-run', '--json'])).stdout);
    expect(json.steps.map((step: { action: string }) => step.action)).toEqual([
      'skip-damaged-journal-lines',
      'fold-journal',
    ]);
    expect(json.journal).toMatchObject({ status: 'damaged', changes: 2 });
    expect(snapshot(dir)).toEqual(before);
  });

  it('--dry-run lists both a damaged line and a torn end that holds a line', async () => {
    const dir = await journalProject(4);
    damageLine(dir, 1);
    const path = join(dir, JOURNAL);
    const lines = journalLines(path);
    const data = readFileSync(path);
    data[lines.lastIndexOf(0x0a, lines.length - 2)] = 0x78; // T-3's newline: T-4 runs into it
    writeFileSync(path, data);
    const json = JSON.parse((await run(['repair', '--dir', dir, '--dry-run', '--json'])).stdout);
    expect(json.steps.map((step: { action: string }) => step.action)).toEqual([
      'skip-damaged-journal-lines',
      'leave-out-journal-tail',
      'fold-journal',
    ]);
    expect(json.journal).toMatchObject({ status: 'damaged', changes: 1, tornLines: 1 });
  });

  it('folds a sound journal (not a problem for --dry-run) and sets aside one that does not continue the main file', async () => {
    const dir = await journalProject(2);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("- fold the journal's 2 change lines into the main file");
    expect((await run(['repair', '--dir', dir])).stdout).toContain(
      "- folded the journal's 2 change line(s) into the main file",
    );
    expect(tickets(dir)).toEqual(['T-0', 'T-1', 'T-2']);

    const foreign = readFileSync(join(await journalProject(1), JOURNAL));
    writeFileSync(join(dir, JOURNAL), foreign);
    expect((await run(['repair', '--dir', dir, '--dry-run'])).stdout).toContain(
      `- the journal does not continue the main file: set it aside as ${JOURNAL}.corrupt-<time>, its 1 change line not applied`,
    );
    const { stdout } = await run(['repair', '--dir', dir]);
    expect(stdout).toMatch(
      /^- journal-set-aside: the journal does not continue .*; journal kept as \S+\.corrupt-\S+$/m,
    );
    expect(tickets(dir)).toEqual(['T-0', 'T-1', 'T-2']);
    expect((await run(['verify', '--dir', dir])).code).toBe(0);
  });
});

describe('repair: a journal without its main file', () => {
  it('--dry-run exits 1 when neither the main file nor a backup is left: the journal will be set aside', async () => {
    const dir = await journalProject(2);
    rmSync(join(dir, '.agent_metrics.json'));
    rmSync(join(dir, '.agent_metrics.json.bak'), { force: true });
    expect((await run(['verify', '--dir', dir])).code).toBe(1);
    const dry = await run(['repair', '--dir', dir, '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain(
      `- the journal does not continue the main file: set it aside as ${JOURNAL}.corrupt-<time>, its 2 change lines not applied`,
    );
    const { code, stdout } = await run(['repair', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^- journal-set-aside: .*; journal kept as \S+\.corrupt-\S+$/m);
  });
});

describe('stats', () => {
  it('prints sizes and counts, and the quarantined files', async () => {
    const dir = pythonProject();
    corrupt(dir, MAIN);
    await run(['repair', '--dir', dir]);
    const { code, stdout } = await run(['stats', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain(`Storage of ${dir}`);
    expect(stdout).toMatch(/^main file valid +yes$/m);
    expect(stdout).toMatch(/^events +35$/m);
    expect(stdout).toMatch(/^quarantined files +1$/m);
    expect(stdout).toMatch(/^quarantined: .*\.agent_metrics\.json\.corrupt-/m);
    const json = JSON.parse((await run(['stats', '--dir', dir, '--json'])).stdout);
    expect(json).toMatchObject({
      dir,
      metricsFileExists: true,
      backupFileExists: true,
      eventCount: 35,
      agentCount: 3,
    });
    expect(json.quarantinedFiles).toHaveLength(1);
  });

  it('says so when a folder is where the main or backup file belongs (its size is not the file’s)', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, MAIN));
    // A link to a folder is a folder too.
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync('elsewhere', join(dir, `${MAIN}.bak`));
    // What it is, then the error (exit 3): a folder cannot be read as the state, as `show` says.
    const { code, stdout, stderr } = await run(['stats', '--dir', dir]);
    expect(code).toBe(3);
    expect(stdout).toMatch(/^main file +a folder, not a file$/m);
    expect(stdout).toMatch(/^main file valid +cannot tell \(unreadable\)$/m);
    expect(stdout).toMatch(/^events +cannot tell \(unreadable\)$/m);
    expect(stdout).toMatch(/^backup file +a folder, not a file$/m);
    expect(stderr).toMatch(/^error E_IO: read failed for .*\.agent_metrics\.json: EISDIR/);
    const json = JSON.parse((await run(['stats', '--dir', dir, '--json'])).stdout);
    expect(json).toMatchObject({
      metricsFileKind: 'folder',
      backupFileKind: 'folder',
      readError: expect.stringContaining('EISDIR'),
    });
    const fine = JSON.parse((await run(['stats', '--dir', tempDir(), '--json'])).stdout);
    expect(fine).toMatchObject({ metricsFileKind: 'missing', backupFileKind: 'missing' });
  });

  it('says missing for files that do not exist', async () => {
    const { stdout } = await run(['stats', '--dir', tempDir()]);
    expect(stdout).toMatch(/^main file +missing$/m);
    expect(stdout).toMatch(/^main file valid +-$/m);
  });
});
