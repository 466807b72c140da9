// µs per `recordEventPatch` (what the writer and every replay compute for a recorded event) when
// three sessions are open and the event adds to one of them. Run `npm run build` first;
// `DIST=<another build's dist folder>` measures another build.
//   node bench/probes/session-patch.mjs
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(process.env.DIST ?? new URL('../../dist', import.meta.url).pathname);
const load = (path) => import(pathToFileURL(join(dist, path)).href);
const { recordEventPatch } = await load('model/operations.js');
const { toStored } = await load('model/state-patch.js');
const { createEmptyState } = await load('model/state.js');
const { startSession } = await load('model/sessions.js');

const draft = createEmptyState('bench');
for (const id of ['s0', 's1', 's2']) {
  startSession(draft, {
    sessionId: id,
    type: 'initializer',
    startedAt: '2026-01-01T00:00:00.000Z',
    maxOpenSessions: 10,
  });
}
const state = toStored(draft);
const at = '2026-01-01T00:00:01.000Z';
const event = {
  event_id: 'e-1',
  agent_name: 'coding',
  session_id: 's1',
  ticket_key: 'AI-1',
  started_at: '2026-01-01T00:00:00.000Z',
  ended_at: at,
  duration_seconds: 1,
  status: 'success',
  input_tokens: 100,
  output_tokens: 10,
  total_tokens: 110,
  estimated_cost_usd: 0.01,
  artifacts: ['commit:abc'],
  error_message: '',
  model_used: 'm',
};
const operation = { op: 'record_event', event, at, caps: { max_events: 500, max_sessions: 50 } };
const runs = 200_000;
for (let round = 0; round < 3; round++) {
  const started = performance.now();
  for (let i = 0; i < runs; i++) recordEventPatch(state, operation);
  console.log(
    `${dist}: ${(((performance.now() - started) * 1000) / runs).toFixed(2)} µs per recordEventPatch`,
  );
}
