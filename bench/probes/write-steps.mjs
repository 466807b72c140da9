// Time and memory allocated by each CPU step of one recorded event, as MetricsStore.update() runs
// them (metrics-store.ts `changeOf`), on a state of 500 events, without the store's I/O. Run
// `npm run build` first.
//   node bench/probes/write-steps.mjs [--ops=20000]
//   node --max-semi-space-size=1024 --min-semi-space-size=1024 bench/probes/write-steps.mjs --alloc
// With --alloc it reports KB allocated per step (the heap's used size around each step): run it
// with a young generation large enough that no collection happens during the run, as above.
import v8 from 'node:v8';
import { buildEvent } from '../../dist/metrics/build-event.js';
import { DEFAULT_MODEL_PRICES, UNKNOWN_MODEL_PRICE } from '../../dist/model/pricing.js';
import { recordEvent } from '../../dist/model/record-event.js';
import { changeLooksValid } from '../../dist/model/schema.js';
import { createEmptyState } from '../../dist/model/state.js';
import {
  applyPatch,
  changedProfileValues,
  diffStates,
  journalForm,
  toStored,
} from '../../dist/model/state-patch.js';
import { workingCopy } from '../../dist/model/working-copy.js';
import { encodeLine } from '../../dist/store/journal-format.js';
import { eventInput } from '../workload.mjs';

const alloc = process.argv.includes('--alloc');
const ops = Number(process.argv.find((a) => a.startsWith('--ops='))?.split('=')[1] ?? (alloc ? 3000 : 20000));
const read = alloc ? () => v8.getHeapStatistics().used_heap_size / 1024 : () => performance.now() * 1000;
const unit = alloc ? 'KB' : 'µs';
const pricing = { prices: DEFAULT_MODEL_PRICES, unknownModelPrice: UNKNOWN_MODEL_PRICE };
const caps = { maxEvents: 500, maxSessions: 50 };
const spent = {};
let state = toStored(createEmptyState('bench'));
let seq = 0;

function step(measure) {
  let before = read();
  const lap = (name) => {
    const now = read();
    if (measure) spent[name] = (spent[name] ?? 0) + now - before;
    before = now;
  };
  const event = buildEvent(eventInput(seq++), new Date(), pricing);
  lap('build the event (AgentMetrics)');
  const working = workingCopy(state);
  lap('working copy');
  recordEvent(working, event);
  lap('mutator (recordEvent)');
  const patch = diffStates(state, working, caps);
  lap('diff');
  const journaled = journalForm(patch);
  lap('JSON form (stringify + parse)');
  encodeLine(journaled.json);
  lap('encode the line (crc32)');
  const next = applyPatch(state, journaled.patch);
  lap('apply the patch');
  const valid = changeLooksValid({
    root: journaled.patch.set ?? {},
    removed: journaled.patch.unset ?? [],
    profiles: Object.values(journaled.patch.agents ?? {}),
    profileFields: changedProfileValues(state, next, journaled.patch),
    events: journaled.patch.events ?? [],
    sessions: journaled.patch.sessions ?? [],
  });
  lap('validate the change');
  if (!valid) throw new Error('the workload made an invalid change');
  state = next;
}

for (let i = 0; i < Math.min(ops, 5000); i++) step(false); // FIFO full, code warm
for (let i = 0; i < ops; i++) step(true);
let total = 0;
for (const [name, sum] of Object.entries(spent)) {
  total += sum;
  console.log(`${name.padEnd(32)} ${(sum / ops).toFixed(2).padStart(8)} ${unit}`);
}
console.log(`${'total'.padEnd(32)} ${(total / ops).toFixed(2).padStart(8)} ${unit} per recorded event`);
