import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/metrics/agent-metrics.js';
import { tempDir } from '../helpers/temp-dir.js';

const LOADER = fileURLToPath(new URL('python_loader.py', import.meta.url));
const FIXTURE = new URL('../fixtures/python-written/.agent_metrics.json', import.meta.url);

function pythonReads(path: string): {
  events: number;
  sessions: number;
  agents: string[];
  total_tokens: number;
} {
  return JSON.parse(execFileSync('python3', [LOADER, path], { encoding: 'utf8' }));
}

describe('files we write, read by Python', () => {
  it('the strict Python reader accepts the Python-written fixture (the reader itself is right)', () => {
    expect(pythonReads(fileURLToPath(FIXTURE))).toMatchObject({ events: 42, sessions: 6 });
  });

  it('accepts a project recorded through the domain API, sessions and all', async () => {
    const dir = tempDir();
    const metrics = new AgentMetrics({ projectName: 'compat', dir, strict: true });
    const sessionId = await metrics.startSession({ type: 'initializer' });
    await metrics.recordEvent({
      agentName: 'coding',
      sessionId,
      status: 'success',
      inputTokens: 10,
      outputTokens: 5,
    });
    await metrics.recordEvent({ agentName: 'github', sessionId, status: 'error', errorMessage: 'boom' });
    await metrics.endSession(sessionId, 'complete');
    // Until a checkpoint, the JSON file holds only the first write (valid, but behind).
    expect(pythonReads(join(dir, '.agent_metrics.json'))).toMatchObject({ events: 0, sessions: 0 });
    await metrics.close();
    expect(pythonReads(join(dir, '.agent_metrics.json'))).toEqual({
      events: 2,
      sessions: 1,
      agents: ['coding', 'github'],
      total_tokens: 15,
    });
  });

  it('accepts the Python fixture after we appended to it', async () => {
    const dir = tempDir();
    copyFileSync(FIXTURE, join(dir, '.agent_metrics.json'));
    const metrics = new AgentMetrics({ projectName: 'compat', dir, strict: true });
    await metrics.recordEvent({ agentName: 'linear', status: 'success', inputTokens: 1, outputTokens: 1 });
    expect(pythonReads(join(dir, '.agent_metrics.json'))).toMatchObject({ events: 43, sessions: 6 });
  });
});
