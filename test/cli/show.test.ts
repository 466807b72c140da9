import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';
import { ANSI, pythonProject, readState, run, snapshot } from './helpers.js';

describe('show', () => {
  it('prints totals, agents, sessions and recent events as plain text when piped', async () => {
    const dir = pythonProject();
    const { code, stdout, stderr } = await run(['show', '--dir', dir]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).not.toMatch(ANSI);
    expect(stdout).not.toMatch(/[┌│─]/);
    expect(stdout).toContain('Project demo-orchestrator');
    expect(stdout).toContain('sessions 6  ·  tokens 1,074,321');
    // agents by calls; columns aligned with spaces; no trailing blanks for scripts
    expect(stdout).toMatch(/^agent +calls +success +avg time +tokens +cost +last active$/m);
    expect(stdout).toMatch(/^linear +15 +86\.7% +1m 56s +372,951 +\$0\.6508 +2026-/m);
    expect(stdout).not.toMatch(/ +$/m);
    expect(stdout).toContain('Recent sessions (6 of 6 kept)');
    expect(stdout).toContain('Recent events (10 of 42 kept)');
  });

  it('draws bordered, coloured tables on a terminal, and none with NO_COLOR or TERM=dumb', async () => {
    const dir = pythonProject();
    const tty = await run(['show', '--dir', dir], { isTTY: true });
    expect(tty.stdout).toMatch(ANSI);
    expect(tty.stdout).toMatch(/┌/);
    for (const env of [{ NO_COLOR: '1' }, { TERM: 'dumb' }] as Record<string, string>[]) {
      const plain = await run(['show', '--dir', dir], { isTTY: true, env });
      expect(plain.stdout, JSON.stringify(env)).not.toMatch(ANSI);
    }
    const forced = await run(['show', '--dir', dir], { env: { FORCE_COLOR: '1' } });
    expect(forced.stdout).toMatch(ANSI);
    expect((await run(['show', '--dir', dir], { env: { FORCE_COLOR: '0' } })).stdout).not.toMatch(ANSI);
  });

  it('prints the state as one JSON document with --json, without changing a file', async () => {
    const dir = pythonProject();
    const before = snapshot(dir);
    const { stdout } = await run(['show', '--dir', dir, '--json'], { isTTY: true });
    expect(JSON.parse(stdout)).toEqual(readState(dir));
    expect(snapshot(dir)).toEqual(before);
  });

  it('shows an empty project in a folder that holds none yet', async () => {
    const dir = tempDir();
    const { code, stdout } = await run(['show', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain('no agent has run yet');
    expect(stdout).toContain('Recent events (0 of 0 kept)');
    expect((await run(['stats', '--dir', dir, '--json'])).stdout).toContain('"metricsFileExists": false');
  });

  it('refuses a folder that does not exist (a typo, an unset variable) in every command that only reads, creating nothing', async () => {
    const dir = `${tempDir()}/none`;
    for (const args of [
      ['show'],
      ['show', '--json'],
      ['stats'],
      ['verify'],
      ['repair'],
      ['repair', '--dry-run'],
      ['export', '--format', 'csv'],
    ]) {
      const { code, stdout, stderr } = await run([...args, '--dir', dir]);
      expect(code, args.join(' ')).toBe(2);
      expect(stdout, args.join(' ')).toBe('');
      expect(stderr, args.join(' ')).toBe(`error E_USAGE: --dir: there is no folder ${dir}\n`);
    }
    expect(existsSync(dir)).toBe(false);
    const file = join(tempDir(), 'file');
    writeFileSync(file, '');
    const { code, stderr } = await run(['show', '--dir', file]);
    expect(code).toBe(2);
    expect(stderr).toBe(`error E_USAGE: --dir: ${file} is a file, not a folder\n`);
    // A loop of links is a mistake in the path too; any other failure to look at the folder is an
    // I/O error (exit 3).
    const loop = join(tempDir(), 'loop');
    symlinkSync(loop, loop);
    const looped = await run(['show', '--dir', join(loop, 'inside')]);
    expect(looped.code).toBe(2);
    expect(looped.stderr).toBe(`error E_USAGE: --dir: ${join(loop, 'inside')} is a loop of symbolic links\n`);
    const tooLong = await run(['show', '--dir', join(tempDir(), 'x'.repeat(300))]);
    expect(tooLong.code).toBe(3);
    expect(tooLong.stderr).toMatch(/^error E_IO: stat failed for .*ENAMETOOLONG/);
  });

  it('lists sessions in progress', async () => {
    const dir = tempDir();
    await run(['session', 'start', '--dir', dir, '--id', 'running-1']);
    await run([
      'record',
      '--dir',
      dir,
      '--agent',
      'coding',
      '--session',
      'running-1',
      '--artifact',
      'commit:1',
    ]);
    const { stdout } = await run(['show', '--dir', dir]);
    expect(stdout).toMatch(/Sessions in progress\n#.*\n1 +running-1 +continuation +running .* - +coding/);
  });

  it('drills into one agent with --agent, and limits the events with --limit', async () => {
    const dir = pythonProject();
    const { code, stdout } = await run(['show', '--dir', dir, '--agent', 'coding', '--limit', '2']);
    expect(code).toBe(0);
    expect(stdout).toContain('Agent coding');
    expect(stdout).toMatch(/^calls +12 \(9 ok, 3 failed\)$/m);
    expect(stdout).toMatch(/^contributions +commits made \d+/m);
    expect(stdout).toContain('Recent events (2 of 12 kept)');
    const json = JSON.parse((await run(['show', '--dir', dir, '--agent', 'coding', '--json'])).stdout);
    expect(json.profile).toEqual(readState(dir).agents.coding);
    expect(json.events).toHaveLength(12);
  });

  it('lists the agents with the most calls first, at most --limit of them, and says how many there are', async () => {
    const dir = pythonProject();
    const agents = Object.values(readState(dir).agents).sort(
      (a, b) => b.total_invocations - a.total_invocations,
    );
    expect(agents.length).toBeGreaterThan(2);
    const { stdout } = await run(['show', '--dir', dir, '--limit', '2']);
    expect(stdout).toContain(`Agents (2 of ${agents.length}, most calls first)`);
    const listed = agents.filter((agent) => new RegExp(`^${agent.agent_name} +\\d`, 'm').test(stdout));
    expect(listed.map((agent) => agent.agent_name)).toEqual(
      agents.slice(0, 2).map((agent) => agent.agent_name),
    );
    const all = await run(['show', '--dir', dir, '--limit', String(agents.length)]);
    expect(all.stdout).toMatch(/^Agents$/m);
  });

  it('shows an agent that has no contributions and no events kept', async () => {
    const dir = tempDir();
    await run(['record', '--dir', dir, '--agent', 'quiet', '--status', 'blocked']);
    const state = readState(dir);
    expect(state.agents.quiet?.last_error).toBe('blocked');
    const { stdout } = await run(['show', '--dir', dir, '--agent', 'quiet']);
    expect(stdout).toMatch(/^contributions +-$/m);
    expect(stdout).toMatch(/^last error +blocked$/m);
    expect(stdout).toMatch(/blocked +- +0 +\$0\.00 +0\.0s +-$/m);
  });

  it('exits 2 for an unknown agent, listing the known ones', async () => {
    const dir = pythonProject();
    const { code, stdout, stderr } = await run(['show', '--dir', dir, '--agent', 'nobody']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('error E_USAGE: --agent: no agent named "nobody" (known: github, coding, linear)\n');
    expect((await run(['show', '--dir', tempDir(), '--agent', 'x'])).stderr).toContain('(known: none yet)');
  });

  it('warns on stderr when loading had to recover a corrupt main file', async () => {
    const dir = pythonProject();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dir}/.agent_metrics.json`, '{"truncated": ');
    const { code, stdout, stderr } = await run(['show', '--dir', dir, '--json']);
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /^warning: recovered the project: restored-from-backup: not valid JSON.*; corrupt main file kept as .*\.corrupt-/,
    );
    expect(JSON.parse(stdout).total_sessions).toBe(5);
  });

  it("colours a warning by stderr's own terminal, not stdout's", async () => {
    const { writeFileSync } = await import('node:fs');
    const warningOf = async (stderrIsTTY: boolean) => {
      const dir = pythonProject();
      writeFileSync(`${dir}/.agent_metrics.json`, '{"truncated": ');
      const { stderr } = await run(['show', '--dir', dir], { isTTY: true, stderrIsTTY });
      return stderr;
    };
    // stdout on a terminal, stderr redirected (`2> log`): no escape codes in the log.
    expect(await warningOf(false)).toMatch(/^warning: recovered the project/);
    expect(await warningOf(true)).toMatch(ANSI);
  });

  it('shows the rest of the dashboard when the sessions in progress are malformed, and says why', async () => {
    const dir = pythonProject();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      `${dir}/.agent_metrics.json`,
      JSON.stringify({ ...readState(dir), sessions_in_progress: [1] }),
    );
    const { code, stdout, stderr } = await run(['show', '--dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toContain('Project demo-orchestrator');
    expect(stdout).not.toContain('Sessions in progress');
    expect(stdout).toContain('Recent events');
    expect(stderr).toMatch(
      /^warning: sessions in progress not shown: invalid sessions in progress: sessions_in_progress\[0\]: .*sets them aside\)\n$/,
    );
  });
});
