import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Profiles } from '../../src/model/profiles.js';
import { createProfile } from '../../src/model/record-event.js';
import { createEmptyState } from '../../src/model/state.js';
import { applyPatch, toStored } from '../../src/model/state-patch.js';
import type { AgentProfile } from '../../src/model/types.js';

// Names a plain object treats specially: integer-like ones go first, `__proto__` is a setter on
// `{}`, the others are inherited from Object.prototype.
const NAMES = [
  'coder',
  'review',
  '__proto__',
  '7',
  '12',
  'constructor',
  'toString',
  'hasOwnProperty',
  'qa',
  'a b',
];

type Step =
  | { kind: 'set'; names: string[] }
  | { kind: 'drop'; names: string[] }
  | { kind: 'read' }
  | { kind: 'fork' };

const someNames = fc.uniqueArray(fc.constantFrom(...NAMES), { minLength: 0, maxLength: 3 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('set' as const), names: someNames }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), names: someNames }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const) }) },
);

/** What the store did before Profiles: a plain object, copied with each change. */
function plainWith(record: Record<string, AgentProfile>, changes: Record<string, AgentProfile>) {
  return { ...record, ...changes };
}

function plainWithout(record: Record<string, AgentProfile>, names: string[]) {
  const kept: Record<string, AgentProfile> = {};
  for (const name of Object.keys(record)) {
    if (!names.includes(name)) Object.defineProperty(kept, name, { value: record[name], enumerable: true });
  }
  return kept;
}

function changesOf(names: string[], serial: () => number): Record<string, AgentProfile> {
  const changes: Record<string, AgentProfile> = {};
  for (const name of names) {
    const profile = { agent_name: name, serial: serial() } as unknown as AgentProfile;
    Object.defineProperty(changes, name, { value: profile, enumerable: true });
  }
  return changes;
}

function expectSame(table: Profiles, record: Record<string, AgentProfile>): void {
  for (const name of NAMES) {
    expect(table.has(name)).toBe(Object.hasOwn(record, name));
    expect(table.get(name)).toBe(Object.hasOwn(record, name) ? record[name] : undefined);
  }
  expect(table.size).toBe(Object.keys(record).length);
  const flat = table.toRecord();
  expect(Object.keys(flat)).toEqual(Object.keys(record));
  for (const name of Object.keys(record)) expect(flat[name]).toBe(record[name]);
  expect(Object.getPrototypeOf(flat)).toBe(Object.prototype);
  expect(JSON.stringify(table)).toBe(JSON.stringify(record));
}

describe('Profiles', () => {
  it('answers as a plain object copied at each change would, and every Profiles made keeps its profiles', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), fc.subarray(NAMES), (steps, initialNames) => {
        let serial = 0;
        const next = () => serial++;
        const initial = changesOf(initialNames, next);
        const made: Array<{ table: Profiles; record: Record<string, AgentProfile> }> = [
          { table: Profiles.from(initial), record: { ...initial } },
        ];
        let current = made[0] as (typeof made)[number];
        for (const item of steps) {
          if (item.kind === 'fork') {
            // Continue from an older one: what is made from it must not change its successors.
            current = made[Math.floor(made.length / 2)] as (typeof made)[number];
            continue;
          }
          if (item.kind === 'read') {
            // A flat form made midway becomes the base of what follows.
            current.table.toRecord();
            continue;
          }
          const changes = changesOf(item.names, next);
          current =
            item.kind === 'set'
              ? { table: current.table.with(changes), record: plainWith(current.record, changes) }
              : {
                  table: current.table.without(item.names),
                  record: plainWithout(current.record, item.names),
                };
          made.push(current);
        }
        for (const { table, record } of made) expectSame(table, record);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps lookups and the flat form right across many flattenings, with thousands of profiles', () => {
    const names = Array.from({ length: 3000 }, (_, index) =>
      index % 7 === 0 ? String(index) : `agent-${index}`,
    );
    let serial = 0;
    const profile = (name: string) => ({ agent_name: name, serial: serial++ }) as unknown as AgentProfile;
    const initial = Object.fromEntries(names.slice(0, 2000).map((name) => [name, profile(name)]));
    let table = Profiles.from(initial);
    let record = { ...initial };
    // Past 2√size layers, several times over: each change one profile, new or not.
    for (let change = 0; change < 1000; change++) {
      const name = names[(change * 37) % names.length] as string;
      const changes = { [name]: profile(name) };
      table = table.with(changes);
      record = plainWith(record, changes);
      expect(table.get(name)).toBe(changes[name]);
    }
    expect(table.size).toBe(Object.keys(record).length);
    expect(Object.keys(table.toRecord())).toEqual(Object.keys(record));
    for (const name of names) expect(table.get(name)).toBe(record[name]);
  });

  it('holds a stored state’s profiles: applyPatch sets, replaces and drops them by name', () => {
    const state = createEmptyState('p');
    state.agents.coder = createProfile('coder');
    state.agents.review = createProfile('review');
    const stored = toStored(state);
    const caps = { max_events: 10, max_sessions: 10 };
    const qa = createProfile('qa');
    const added = applyPatch(stored, {
      caps,
      agents: { qa },
      agent_fields: { coder: { set: { total_invocations: 4 } } },
    });
    expect(added.agents).toBeInstanceOf(Profiles);
    expect(Object.keys(added.agents.toRecord())).toEqual(['coder', 'review', 'qa']);
    expect(added.agents.get('qa')).toBe(qa);
    expect(added.agents.get('coder')?.total_invocations).toBe(4);
    // The state it came from is unchanged.
    expect(stored.agents.get('coder')?.total_invocations).toBe(0);
    expect(stored.agents.has('qa')).toBe(false);
    const dropped = applyPatch(added, { caps, drop_agents: ['coder'] });
    expect(Object.keys(dropped.agents.toRecord())).toEqual(['review', 'qa']);
    expect(dropped.agents.size).toBe(2);
    expect(JSON.parse(JSON.stringify(dropped)).agents.qa.agent_name).toBe('qa');
  });
});
