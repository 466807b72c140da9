import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/model/invariants.js';
import { createProfile } from '../../src/model/record-event.js';
import {
  changeLooksValid,
  formatPath,
  MAX_NESTING,
  uncheckedProfileIssues,
  validateState,
} from '../../src/model/schema.js';
import { createEmptyState } from '../../src/model/state.js';
import { toStored } from '../../src/model/state-patch.js';
import { workingCopy } from '../../src/model/working-copy.js';
import { makeEvent, makeState } from '../helpers/builders.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/python-written/${name}`, import.meta.url), 'utf8'));

describe('validateState', () => {
  it('accepts an empty state and both files written by the Python implementation', () => {
    expect(validateState(createEmptyState('p'))).toEqual([]);
    expect(validateState(fixture('.agent_metrics.json'))).toEqual([]);
    expect(validateState(fixture('.agent_metrics.json.bak'))).toEqual([]);
  });

  it('leaves profiles under __proto__, prototype and constructor (keys valibot records skip) to uncheckedProfileIssues, which writes and checkInvariants use', () => {
    const text = (profiles: string) =>
      `{"version":1,"project_name":"p","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",` +
      `"total_sessions":0,"total_tokens":0,"total_cost_usd":0,"total_duration_seconds":0,` +
      `"agents":{${profiles}},"events":[],"sessions":[]}`;
    const profile = (name: string) => `${JSON.stringify(name)}:${JSON.stringify(createProfile(name))}`;
    const valid = JSON.parse(text(['__proto__', 'prototype', 'constructor', 'coder'].map(profile).join(',')));
    expect(validateState(valid)).toEqual([]);
    expect(uncheckedProfileIssues(valid)).toEqual([]);
    const garbage = JSON.parse(text('"__proto__":5,"prototype":[],"constructor":null,"toString":"x"'));
    // A load accepts such a file, as before (an earlier version could write one): only toString is wrong to it.
    expect(validateState(garbage).map((issue) => issue.path)).toEqual(['agents.toString']);
    expect(uncheckedProfileIssues(garbage).map((issue) => issue.path)).toEqual([
      'agents.__proto__',
      'agents.prototype',
      'agents.constructor',
    ]);
    const missing = JSON.parse(text(profile('constructor')));
    delete missing.agents.constructor.total_invocations;
    expect(uncheckedProfileIssues(missing)).toEqual([
      { path: 'agents.constructor.total_invocations', message: 'required number is missing' },
    ]);
    // verify's check of a valid file names it instead of failing on it.
    expect(checkInvariants(missing).map((issue) => issue.path)).toEqual([
      'agents.constructor.total_invocations',
    ]);
    // Not a state, or no agents object: nothing to say (validateState names that).
    expect(uncheckedProfileIssues(null)).toEqual([]);
    expect(uncheckedProfileIssues({ agents: 'x' })).toEqual([]);
    // A working copy's profiles are accessors: read as profiles all the same.
    const stored = toStored(valid);
    expect(uncheckedProfileIssues(workingCopy(stored))).toEqual([]);
  });

  it('names each bad path inside events, sessions and agent profiles', () => {
    const state = makeState(5, 2) as unknown as Record<string, unknown> & ReturnType<typeof makeState>;
    (state.events[3] as Record<string, unknown>).status = 'exploded';
    (state.sessions[1] as Record<string, unknown>).session_type = 'other';
    (state.agents.coding as Record<string, unknown>).total_tokens = -1;
    const paths = validateState(state).map((issue) => issue.path);
    expect(paths).toEqual(['agents.coding.total_tokens', 'events[3].status', 'sessions[1].session_type']);
    const status = validateState(state).find((issue) => issue.path === 'events[3].status');
    expect(status?.message).toMatch(/success/);
  });

  it('reports a missing root key as required, and a non-object as the root', () => {
    const { total_tokens: _, ...withoutTokens } = createEmptyState('p');
    expect(validateState(withoutTokens)).toEqual([
      { path: 'total_tokens', message: 'required number is missing' },
    ]);
    expect(validateState(null)[0]?.path).toBe('(root)');
    expect(validateState([])[0]?.path).toBe('(root)');
  });

  it('rejects an array where an object or a record belongs, as a whole, and a missing enum as required', () => {
    const state = makeState(1, 1) as unknown as Record<string, unknown>;
    state.agents = [];
    (state.events as unknown[])[0] = [];
    delete (state.sessions as Record<string, unknown>[])[0]?.status;
    expect(validateState(state)).toEqual([
      { path: 'agents', message: 'Invalid type: Expected Object but received Array' },
      { path: 'events[0]', message: 'Invalid type: Expected Object but received Array' },
      {
        path: 'sessions[0].status',
        message: 'required field is missing (expected "continue" | "error" | "complete")',
      },
    ]);
  });

  it('gives one issue per bad value, even when it breaks several rules', () => {
    const state = makeState(0, 0);
    state.total_sessions = -1.5;
    expect(validateState(state)).toEqual([
      { path: 'total_sessions', message: 'Invalid number: expected an integer, received -1.5' },
    ]);
  });

  it('rejects fractional counters, NaN, negative money and malformed timestamps', () => {
    const state = makeState(1, 0);
    state.total_sessions = 1.5;
    state.total_cost_usd = Number.NaN;
    state.events[0] = makeEvent({ estimated_cost_usd: -0.01, started_at: 'yesterday' });
    const paths = validateState(state).map((issue) => issue.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'total_sessions',
        'total_cost_usd',
        'events[0].estimated_cost_usd',
        'events[0].started_at',
      ]),
    );
  });

  it('allows extra keys anywhere (other versions of the format add them)', () => {
    const state = makeState(1, 1) as ReturnType<typeof makeState> & Record<string, unknown>;
    state.sessions_in_progress = [{ anything: true }];
    (state.events[0] as Record<string, unknown>).trace_id = 'abc';
    expect(validateState(state)).toEqual([]);
  });

  it('finds a wrong type at any randomly chosen field of an event', () => {
    const keys = Object.keys(makeEvent());
    fc.assert(
      fc.property(fc.nat({ max: 9 }), fc.constantFrom(...keys), (index, key) => {
        const state = makeState(10, 0);
        (state.events[index] as Record<string, unknown>)[key] = { wrong: 'type' };
        expect(validateState(state).map((issue) => issue.path)).toContain(`events[${index}].${key}`);
      }),
    );
  });
});

describe('changeLooksValid', () => {
  // Values that break a rule somewhere, and values that are fine everywhere a string goes.
  const oddValue = fc.oneof(
    fc.constantFrom(-1, 1.5, Number.NaN, '', 'not a time', null, [], {}, 'x'),
    fc.jsonValue({ maxDepth: 2 }),
  );

  it('says valid only when validateState finds nothing in the changed part (never hides an issue)', () => {
    const eventKeys = Object.keys(makeEvent());
    const rootKeys = ['updated_at', 'total_tokens', 'total_cost_usd', 'version', 'project_name', 'notes'];
    fc.assert(
      fc.property(
        fc.option(fc.tuple(fc.constantFrom(...rootKeys), oddValue), { nil: undefined }),
        fc.option(fc.tuple(fc.constantFrom(...eventKeys), oddValue), { nil: undefined }),
        fc.option(
          fc.tuple(fc.constantFrom('total_tokens', 'success_rate', 'last_active', 'recent_events'), oddValue),
          {
            nil: undefined,
          },
        ),
        fc.boolean(),
        fc.constantFrom(undefined, 'xp', 'notes'),
        (rootChange, eventChange, profileChange, removeRequired, profileKeyRemoved) => {
          const state = makeState(1, 0);
          const root: Record<string, unknown> = { total_tokens: state.total_tokens };
          if (rootChange) root[rootChange[0]] = rootChange[1];
          const event = { ...(state.events[0] as object) } as Record<string, unknown>;
          if (eventChange) event[eventChange[0]] = eventChange[1];
          const profile = { ...(state.agents.coding as object) } as Record<string, unknown>;
          if (profileChange) profile[profileChange[0]] = profileChange[1];
          if (profileKeyRemoved) delete profile[profileKeyRemoved];
          const removed = removeRequired ? ['total_sessions'] : [];

          const changed: Record<string, unknown> = {
            ...state,
            ...root,
            agents: { coding: profile },
            events: [event],
          };
          for (const key of removed) delete changed[key];
          const issues = validateState(changed);
          const common = { root, removed, events: [event], sessions: [] };
          const quick = changeLooksValid({ ...common, profiles: [profile], profileFields: [] });
          // The same profile change, as the fields that changed (how an existing profile is checked).
          const values = profileChange ? { [profileChange[0]]: profileChange[1] } : {};
          const fieldRemoval = profileKeyRemoved ? [profileKeyRemoved] : [];
          const quickFields = changeLooksValid({
            ...common,
            profiles: [],
            profileFields: [{ values, removed: fieldRemoval }],
          });
          if (quick) expect(issues).toEqual([]);
          if (quickFields) expect(issues).toEqual([]);
          // And it is not so strict as to send every change down the slow path.
          const untouched = !rootChange && !eventChange && !profileChange && !removeRequired;
          if (untouched && profileKeyRemoved !== 'xp') {
            expect(quick).toBe(true);
            expect(quickFields).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees with validateState at the nesting limit, for root values and for records', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let level = 0; level < depth; level++) value = [value];
      return value;
    };
    const change = { removed: [], profiles: [], profileFields: [], events: [], sessions: [] };
    for (const depth of [MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING]) {
      // A root value `depth` deep makes a state `depth + 1` deep.
      const state = { ...createEmptyState('p'), notes: nested(depth) };
      const valid = validateState(state).length === 0;
      expect(valid).toBe(depth + 1 <= MAX_NESTING);
      expect(changeLooksValid({ ...change, root: { notes: nested(depth) } })).toBe(valid);
      // A record `depth` deep (its extra key one less) makes a state `depth + 2` deep.
      const event = { ...makeEvent(), extra: nested(depth - 1) };
      const withEvent = { ...createEmptyState('p'), events: [event] };
      const eventValid = validateState(withEvent).length === 0;
      expect(eventValid).toBe(depth + 2 <= MAX_NESTING);
      expect(changeLooksValid({ ...change, root: {}, events: [event] })).toBe(eventValid);
      // A profile's value `depth` deep makes a state `depth + 3` deep.
      const profile = { ...createProfile('coding'), extra: nested(depth - 2) };
      const withProfile = { ...createEmptyState('p'), agents: { coding: profile } };
      const profileValid = validateState(withProfile).length === 0;
      expect(profileValid).toBe(depth + 1 <= MAX_NESTING);
      const profileFields = [{ values: { extra: nested(depth - 2) }, removed: [] }];
      expect(changeLooksValid({ ...change, root: {}, profileFields })).toBe(profileValid);
    }
  });

  it('rejects a value nested deeper than a state may be', () => {
    let deep: unknown = 1;
    for (let depth = 0; depth < 600; depth++) deep = [deep];
    expect(
      changeLooksValid({
        root: { notes: deep },
        removed: [],
        profiles: [],
        profileFields: [],
        events: [],
        sessions: [],
      }),
    ).toBe(false);
  });
});

describe('formatPath', () => {
  it('writes indices in brackets and quotes keys that are not identifiers', () => {
    expect(formatPath(['events', 3, 'status'])).toBe('events[3].status');
    expect(formatPath(['agents', 'my agent', 'xp'])).toBe('agents["my agent"].xp');
    expect(formatPath([])).toBe('(root)');
  });
});
