// Worker: one session loop of an orchestrator. Starts a session, records `count` events through
// AgentMetrics (alternating between an agent shared by all workers and this worker's own agent;
// every 10th event fails), ends the session, and prints a JSON summary line.
import { AgentMetrics } from '../../dist/index.js';

const [dir, count, name] = process.argv.slice(2);
const metrics = new AgentMetrics({
  projectName: 'multi-process',
  dir,
  lockTimeoutMs: 60_000,
  strict: true, // a failure must fail the test, not vanish into a warning
});
const started = performance.now();
const sessionId = await metrics.startSession({ type: 'continuation' });
for (let i = 0; i < Number(count); i++) {
  await metrics.recordEvent({
    agentName: i % 2 === 0 ? 'shared' : `agent-${name}`,
    sessionId,
    ticketKey: `T-${name}`,
    model: 'claude-haiku-4-5',
    status: i % 10 === 9 ? 'error' : 'success',
    inputTokens: 1000,
    outputTokens: 100,
    durationSeconds: 1.5,
    artifacts: ['commit:abc', 'lines:+2/-1'],
    errorMessage: i % 10 === 9 ? 'boom' : '',
  });
}
const summary = await metrics.endSession(sessionId, 'complete');
const elapsedMs = performance.now() - started;
console.log(JSON.stringify({ name, sessionId, sessionNumber: summary.session_number, elapsedMs }));
