import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createProfile } from '../../src/model/record-event.js';
import { validateState } from '../../src/model/schema.js';
import { applyFifoEviction, type Caps } from '../../src/model/state.js';
import {
  applyPatch,
  diffStates,
  journalForm,
  malformedContainers,
  type StatePatch,
  toStored,
} from '../../src/model/state-patch.js';
import type { AgentProfile, DashboardState } from '../../src/model/types.js';
import { appendRecord, unreadAgents, workingCopy } from '../../src/model/working-copy.js';
import { makeEvent, makeProfile, makeSession, makeState } from '../helpers/builders.js';

type Change =
  | { kind: 'push-event'; tokens: number }
  | { kind: 'push-session' }
  | { kind: 'bump'; key: 'total_sessions' | 'total_tokens' | 'total_cost_usd'; by: number }
  | { kind: 'profile'; name: string; invocations: number }
  | { kind: 'profile-field'; name: string; key: string; value: unknown }
  | { kind: 'profile-unset'; name: string; key: string }
  | { kind: 'recent'; name: string; drop: number; push: string[]; edit: number | undefined }
  | { kind: 'drop-agent'; name: string }
  | { kind: 'set-extra'; key: string; value: unknown }
  | { kind: 'unset-extra'; key: string }
  | { kind: 'replace-events'; drop: number; reverse: boolean }
  | { kind: 'remove-event'; at: number }
  | { kind: 'replace-sessions'; drop: number };

const agentName = fc.constantFrom('coding', 'review', 'qa');
const extraKey = fc.constantFrom('extra_a', 'extra_b', 'notes', 'project_name');

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant('push-event' as const), tokens: fc.nat(10_000) }),
  fc.record({ kind: fc.constant('push-session' as const) }),
  fc.record({
    kind: fc.constant('bump' as const),
    key: fc.constantFrom('total_sessions' as const, 'total_tokens' as const, 'total_cost_usd' as const),
    by: fc.integer({ min: 0, max: 1000 }),
  }),
  fc.record({ kind: fc.constant('profile' as const), name: agentName, invocations: fc.nat(50) }),
  fc.record({ kind: fc.constant('drop-agent' as const), name: agentName }),
  fc.record({
    kind: fc.constant('profile-field' as const),
    name: agentName,
    key: fc.constantFrom('total_tokens', 'notes', 'recent_events', '__proto__'),
    value: fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(undefined, () => 1, Symbol('s')),
    ),
  }),
  fc.record({
    kind: fc.constant('profile-unset' as const),
    name: agentName,
    key: fc.constantFrom('notes', 'xp', 'recent_events'),
  }),
  // Ids from a small alphabet, so that lists hold duplicates.
  fc.record({
    kind: fc.constant('recent' as const),
    name: agentName,
    drop: fc.nat(3),
    push: fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 3 }),
    // An item changed in place: no longer a shift of the list.
    edit: fc.option(fc.nat(4), { nil: undefined }),
  }),
  // Values JSON has not too (the key is dropped, as from a whole file).
  fc.record({
    kind: fc.constant('set-extra' as const),
    key: extraKey,
    value: fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(undefined, () => 1, Symbol('s')),
    ),
  }),
  fc.record({ kind: fc.constant('unset-extra' as const), key: extraKey }),
  fc.record({ kind: fc.constant('replace-events' as const), drop: fc.nat(3), reverse: fc.boolean() }),
  fc.record({ kind: fc.constant('remove-event' as const), at: fc.nat(10) }),
  fc.record({ kind: fc.constant('replace-sessions' as const), drop: fc.nat(2) }),
);

let serial = 0;

function apply(state: DashboardState, step: Change): void {
  switch (step.kind) {
    case 'push-event':
      state.events.push(makeEvent({ event_id: `new-${serial++}`, total_tokens: step.tokens }));
      break;
    case 'push-session':
      state.sessions.push(makeSession({ session_id: `s-new-${serial++}` }));
      break;
    case 'bump':
      state[step.key] += step.by;
      break;
    case 'profile': {
      const base = state.agents[step.name] ?? { ...createProfile(step.name) };
      state.agents[step.name] = { ...base, total_invocations: step.invocations };
      break;
    }
    case 'drop-agent':
      delete state.agents[step.name];
      break;
    case 'profile-field': {
      const profile = state.agents[step.name];
      if (profile)
        Object.defineProperty(profile, step.key, {
          value: step.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      break;
    }
    case 'profile-unset':
      if (state.agents[step.name]) delete (state.agents[step.name] as Record<string, unknown>)[step.key];
      break;
    case 'recent': {
      const profile = state.agents[step.name];
      if (profile) {
        const list = Array.isArray(profile.recent_events) ? profile.recent_events : [];
        const next = [...list.slice(step.drop), ...step.push];
        if (step.edit !== undefined && step.edit < next.length) next[step.edit] = 'e';
        profile.recent_events = next;
      }
      break;
    }
    case 'set-extra':
      state[step.key] = step.value;
      break;
    case 'unset-extra':
      delete state[step.key];
      break;
    case 'replace-events': {
      const kept = state.events.slice(step.drop);
      state.events = step.reverse ? kept.reverse() : kept;
      break;
    }
    case 'remove-event':
      state.events.splice(step.at, 1);
      break;
    case 'replace-sessions':
      state.sessions = state.sessions.slice(step.drop);
      break;
  }
}

/** The patch as the journal holds it (what the store applies and a replay reads). */
const roundTrip = (patch: StatePatch): StatePatch => journalForm(patch).patch;

describe('diffStates / applyPatch', () => {
  it('a line whose optional parts are null (another writer, or edited by hand) changes nothing with them', () => {
    const before = toStored(makeState(2, 1));
    const patch = {
      caps: { max_events: 500, max_sessions: 50 },
      set: null,
      unset: null,
      agents: null,
      drop_agents: null,
    } as unknown as StatePatch;
    const after = applyPatch(before, patch);
    expect(JSON.parse(JSON.stringify(after))).toEqual(JSON.parse(JSON.stringify(before)));
  });

  it('replaying the journaled patch of any change gives the changed state with the caps applied', () => {
    const scenario = fc.record({
      events: fc.nat(8),
      sessions: fc.nat(4),
      extra: fc.option(fc.jsonValue(), { nil: undefined }),
      changes: fc.array(change, { maxLength: 12 }),
      caps: fc.record({
        maxEvents: fc.integer({ min: 1, max: 12 }),
        maxSessions: fc.integer({ min: 1, max: 6 }),
      }),
    });
    fc.assert(
      fc.property(scenario, ({ events, sessions, extra, changes, caps }) => {
        const plain = makeState(events, sessions);
        plain.agents.review = makeProfile({
          ...createProfile('review'),
          total_invocations: 3,
          recent_events: ['a', 'b', 'c', 'a'],
        });
        if (extra !== undefined) plain.extra_a = extra;
        const before = toStored(plain);
        const after = workingCopy(before);
        for (const step of changes) apply(after, step);

        const patch = roundTrip(diffStates(before, after, caps as Caps));
        const appendedOnly = [...before.events].every((event, index) => after.events[index] === event);
        if (appendedOnly) {
          expect(patch).not.toHaveProperty('all_events');
          expect(patch).not.toHaveProperty('drop_events');
          expect(patch.events ?? []).toEqual(after.events.slice(events));
        }
        // Compared as JSON, what the files hold: JSON has no -0 or undefined (the store's states
        // come from JSON and follow the journaled patch for that reason).
        const expected = JSON.parse(JSON.stringify(applyFifoEviction(after, caps)));
        expect(JSON.parse(JSON.stringify(applyPatch(before, patch)))).toEqual(expected);
        // The input is never modified.
        expect(before.events).toHaveLength(events);
      }),
      { numRuns: 500 },
    );
  });

  it('an append gives only the new events; a replaced list gives the whole list', () => {
    const caps: Caps = { maxEvents: 100, maxSessions: 100 };
    const before = toStored(makeState(3, 1));
    const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

    const appended = workingCopy(before);
    appended.events.push(makeEvent({ event_id: 'evt-3' }));
    const append = diffStates(before, appended, caps);
    expect(append.events?.map((event) => event.event_id)).toEqual(['evt-3']);
    expect(append).not.toHaveProperty('all_events');
    expect(append).not.toHaveProperty('sessions');
    expect(append).not.toHaveProperty('all_sessions');

    // Trimming the oldest records is a continuation too: a count, never the kept records again.
    const trimmed = workingCopy(before);
    trimmed.events = trimmed.events.slice(1).concat(makeEvent({ event_id: 'evt-3' }));
    const trim = diffStates(before, trimmed, caps);
    expect(trim.drop_events).toBe(1);
    expect(trim.events?.map((event) => event.event_id)).toEqual(['evt-3']);
    expect(trim).not.toHaveProperty('all_events');
    expect(plain(applyPatch(before, roundTrip(trim)))).toEqual(plain(trimmed));

    const replaced = workingCopy(before);
    replaced.events.splice(1, 1); // a record removed from the middle: history rewritten
    const replace = diffStates(before, replaced, caps);
    expect(replace.all_events?.map((event) => event.event_id)).toEqual(['evt-0', 'evt-2']);
    expect(replace).not.toHaveProperty('events');
    expect(replace).not.toHaveProperty('drop_events');
    expect(plain(applyPatch(before, roundTrip(replace)))).toEqual(plain(replaced));

    // An equal but rebuilt record is a rewrite of history, not an append.
    const rebuilt = workingCopy(before);
    rebuilt.events[0] = { ...(rebuilt.events[0] as (typeof rebuilt.events)[number]) };
    expect(diffStates(before, rebuilt, caps)).toHaveProperty('all_events');

    const unchanged = diffStates(before, workingCopy(before), caps);
    expect(unchanged).toEqual({ caps: { max_events: 100, max_sessions: 100 } });
  });

  it('appendRecord on a copy whose history was not read gives the same patch without making the list', () => {
    const caps: Caps = { maxEvents: 4, maxSessions: 100 };
    const before = toStored(makeState(4, 1));
    const working = workingCopy(before);
    appendRecord(working, 'events', makeEvent({ event_id: 'evt-4' }));
    // Still an accessor: nobody read the list, so none was made.
    expect(Object.getOwnPropertyDescriptor(working, 'events')?.get).toBeTypeOf('function');
    const patch = diffStates(before, working, caps);
    expect(patch.events?.map((event) => event.event_id)).toEqual(['evt-4']);
    expect(patch).not.toHaveProperty('all_events');
    const after = applyPatch(before, roundTrip(patch));
    expect([...after.events].map((event) => event.event_id)).toEqual(['evt-1', 'evt-2', 'evt-3', 'evt-4']);
    // Reading the list afterwards shows the appended record after the stored ones.
    expect(working.events.map((event) => event.event_id)).toEqual([
      'evt-0',
      'evt-1',
      'evt-2',
      'evt-3',
      'evt-4',
    ]);
    appendRecord(working, 'events', makeEvent({ event_id: 'evt-5' }));
    expect(working.events).toHaveLength(6);
    // The stored state is never changed through a copy.
    expect(before.events).toHaveLength(4);
  });

  it('a copy is independent of the stored state, and of the other copies', () => {
    const before = toStored(makeState(2, 1));
    const one = workingCopy(before);
    const two = workingCopy(before);
    one.total_tokens += 5;
    (one.agents.coding as { total_tokens: number }).total_tokens += 7;
    one.events.push(makeEvent({ event_id: 'evt-x' }));
    expect(two.total_tokens).toBe(before.total_tokens);
    expect(two.agents.coding?.total_tokens).toBe(before.agents.get('coding')?.total_tokens);
    expect(two.events).toHaveLength(2);
    expect(before.events).toHaveLength(2);
    expect(() => {
      (one.events[0] as { status: string }).status = 'error';
    }).toThrow(TypeError);
  });

  it('profiles of a copy are copied only when read; any way of changing one is seen', () => {
    const caps: Caps = { maxEvents: 100, maxSessions: 100 };
    const plainState = makeState(1, 0);
    plainState.agents.review = makeProfile({ ...createProfile('review'), total_invocations: 3 });
    const before = toStored(plainState);

    const read = workingCopy(before);
    (read.agents.coding as { total_tokens: number }).total_tokens += 1;
    // `review` was never read: still the lazy accessor, and not in the patch.
    expect(Object.getOwnPropertyDescriptor(read.agents, 'review')?.get).toBeTypeOf('function');
    const readPatch = diffStates(before, read, caps);
    expect(readPatch).not.toHaveProperty('agents');
    // An existing profile changes field by field: its values that are not lists, and no list
    // that did not change.
    const codingChange = readPatch.agent_fields?.coding;
    expect(codingChange?.set).toMatchObject({ total_tokens: expect.any(Number), xp: 0 });
    expect(Object.keys(codingChange?.set ?? {})).not.toContain('recent_events');
    expect(Object.keys(codingChange ?? {})).toEqual(['set']);

    const readOnly = workingCopy(before);
    expect(readOnly.agents.review?.total_invocations).toBe(3);
    expect(diffStates(before, readOnly, caps)).not.toHaveProperty('agents');
    expect(diffStates(before, readOnly, caps)).not.toHaveProperty('agent_fields');

    const reassigned = workingCopy(before);
    reassigned.agents.review = makeProfile({ ...createProfile('review'), total_invocations: 9 });
    expect(diffStates(before, reassigned, caps).agent_fields?.review?.set?.total_invocations).toBe(9);

    const readded = workingCopy(before);
    delete readded.agents.review;
    readded.agents.review = makeProfile({ ...createProfile('review'), total_invocations: 4 });
    expect(diffStates(before, readded, caps).agent_fields?.review?.set?.total_invocations).toBe(4);

    const dropped = workingCopy(before);
    delete dropped.agents.review;
    expect(diffStates(before, dropped, caps).drop_agents).toEqual(['review']);

    const rebuilt = workingCopy(before);
    rebuilt.agents = { ...rebuilt.agents, qa: makeProfile(createProfile('qa')) };
    const patch = diffStates(before, rebuilt, caps);
    expect(Object.keys(patch.agents ?? {})).toEqual(['qa']);
    expect(patch).not.toHaveProperty('drop_agents');
    expect(patch).not.toHaveProperty('agent_fields');

    // A profile read keeps its accessor (redefining it as a data property at each first read was
    // quadratic in the number of agents), and answers with the same copy, changes kept.
    const twice = workingCopy(before);
    const first = twice.agents.review as { total_invocations: number };
    first.total_invocations = 11;
    expect(twice.agents.review).toBe(first);
    expect(Object.getOwnPropertyDescriptor(twice.agents, 'review')?.get).toBeTypeOf('function');
    expect(diffStates(before, twice, caps).agent_fields?.review?.set?.total_invocations).toBe(11);

    // Its accessor put back after a delete still answers with the profile as changed.
    const restored = workingCopy(before);
    const accessor = Object.getOwnPropertyDescriptor(restored.agents, 'review') as PropertyDescriptor;
    (restored.agents.review as { total_invocations: number }).total_invocations = 20;
    delete restored.agents.review;
    Object.defineProperty(restored.agents, 'review', accessor);
    expect(
      Object.values(restored.agents).find((profile) => profile.agent_name === 'review')?.total_invocations,
    ).toBe(20);
    expect(diffStates(before, restored, caps).agent_fields?.review?.set?.total_invocations).toBe(20);

    // The profiles of a frozen `agents` can still be read (a first read redefined the property).
    const frozen = workingCopy(before);
    Object.freeze(frozen.agents);
    expect(frozen.agents.review?.total_invocations).toBe(3);

    // What a copy shows is the stored state, whatever the other copies did.
    expect(workingCopy(before).agents.review?.total_invocations).toBe(3);
    expect(JSON.parse(JSON.stringify(workingCopy(before)))).toEqual(JSON.parse(JSON.stringify(plainState)));
  });
});

describe('a working copy’s agents, not read', () => {
  it('cost nothing per profile until read, and a mutator that does not read them changes no profile', () => {
    const plain = makeState(2, 1);
    plain.agents.review = makeProfile({ ...createProfile('review'), total_invocations: 3 });
    const before = toStored(plain);
    const caps = { maxEvents: 500, maxSessions: 50 };

    const untouched = workingCopy(before);
    expect(unreadAgents(untouched)).toBe(before.agents);
    untouched.total_tokens += 1;
    const patch = diffStates(before, untouched, caps);
    expect(patch.set?.total_tokens).toBe(plain.total_tokens + 1);
    for (const key of ['agents', 'agent_fields', 'drop_agents']) expect(patch).not.toHaveProperty(key);
    expect(unreadAgents(untouched)).toBe(before.agents);

    // A read makes the object once; later reads answer with it.
    const read = workingCopy(before);
    const agents = read.agents;
    expect(read.agents).toBe(agents);
    expect(unreadAgents(read)).toBeUndefined();
    expect(Object.keys(agents)).toEqual(['coding', 'review']);

    // Assigned, deleted, frozen: as a data property would be.
    const assigned = workingCopy(before);
    assigned.agents = { review: assigned.agents.review as AgentProfile };
    expect(diffStates(before, assigned, caps).drop_agents).toEqual(['coding']);
    const deleted = workingCopy(before);
    delete (deleted as Partial<DashboardState>).agents;
    expect(unreadAgents(deleted)).toBeUndefined();
    // Reported as a missing container (validateState then names `agents`).
    expect(malformedContainers(deleted)).toMatchObject({ agents: undefined, events: [] });
    expect(malformedContainers(untouched)).toBeUndefined();
    const frozen = Object.freeze(workingCopy(before));
    expect(frozen.agents.review?.total_invocations).toBe(3);
    expect(JSON.parse(JSON.stringify(workingCopy(before)))).toEqual(JSON.parse(JSON.stringify(plain)));
  });
});

describe('applyPatch of a profile changed field by field', () => {
  it('whose creating line was lost (damaged and skipped): a new profile with the fields set, valid', () => {
    const before = toStored(makeState(0, 0));
    const patch: StatePatch = {
      caps: { max_events: 500, max_sessions: 50 },
      agent_fields: {
        lost: {
          set: { total_invocations: 2, successful_invocations: 2 },
          shift: { recent_events: { drop: 1, push: ['e2'] } },
        },
      },
    };
    const state = workingCopy(applyPatch(before, patch));
    expect(state.agents.lost).toEqual({
      ...createProfile('lost'),
      total_invocations: 2,
      successful_invocations: 2,
      recent_events: ['e2'],
    });
    expect(validateState(state)).toEqual([]);
  });
});
