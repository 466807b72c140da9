import { describe, expect, it } from 'vitest';
import { rehearsal } from '../../src/cli/context.js';
import { makeProfile, makeState } from '../helpers/builders.js';

describe('rehearsal', () => {
  it('tries calls on a copy of the state without its events and other agents, leaving the state given as it was', async () => {
    const state = makeState(3, 1);
    state.agents.other = makeProfile({ agent_name: 'other' });
    Object.defineProperty(state.agents, '__proto__', {
      value: makeProfile({ agent_name: '__proto__' }),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    const before = structuredClone(state);
    const scratch = rehearsal(state, ['coding', '__proto__', 'new', 42]);
    // The copy is made and validated at every call: with the events and every profile it cost
    // O(events + agents) each.
    const copy = await scratch.getState();
    expect(copy.events).toEqual([]);
    expect(Object.keys(copy.agents)).toEqual(['coding', '__proto__']);
    expect(copy.agents.coding).toEqual(state.agents.coding);
    await scratch.recordEvent({ agentName: 'coding', status: 'success', inputTokens: 5 });
    const after = await scratch.getState();
    expect(after.events.map((event) => event.agent_name)).toEqual(['coding']);
    expect(after.agents.coding?.total_tokens).toBe((state.agents.coding?.total_tokens ?? 0) + 5);
    expect(after.total_tokens).toBe(state.total_tokens + 5);
    expect(after.sessions).toEqual(state.sessions);
    expect(state).toEqual(before);
  });
});
