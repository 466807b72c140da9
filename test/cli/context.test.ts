import { describe, expect, it } from 'vitest';
import { rehearsal } from '../../src/cli/context.js';
import { makeState } from '../helpers/builders.js';

describe('rehearsal', () => {
  it('tries calls on a copy of the state without its events, leaving the state given as it was', async () => {
    const state = makeState(3, 1);
    const before = structuredClone(state);
    const scratch = rehearsal(state);
    // The copy is made and validated at every call: with the events it cost O(events kept) each.
    expect((await scratch.getState()).events).toEqual([]);
    await scratch.recordEvent({ agentName: 'a', status: 'success', inputTokens: 5 });
    const after = await scratch.getState();
    expect(after.events.map((event) => event.agent_name)).toEqual(['a']);
    expect(after.total_tokens).toBe(state.total_tokens + 5);
    expect(after.sessions).toEqual(state.sessions);
    expect(state).toEqual(before);
  });
});
