import { describe, expect, it } from 'vitest';
import { bump } from '../helpers/builders.js';
import { FaultyFileSystem } from '../helpers/faulty-fs.js';
import { file, storeIn } from '../helpers/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const MAIN = '.agent_metrics.json';

describe('lock-free reads of an instance that does not write', () => {
  it('read the main file again only when it changed, and the journal every time', async () => {
    const dir = tempDir();
    const { store: writer } = storeIn(dir, { checkpointIdleMs: 0 });
    for (let i = 0; i < 3; i++) await writer.update(bump(i));
    await writer.checkpoint();
    const faulty = new FaultyFileSystem();
    const { store: reader } = storeIn(dir, { fileSystem: faulty.fs });
    const mainOpens = () =>
      faulty.calls.filter((call) => call.method === 'open' && call.args[0] === file(dir, MAIN)).length;
    const ids = async () => (await reader.load()).events.map((event) => event.event_id);

    expect(await ids()).toEqual(['e0', 'e1', 'e2']);
    expect(mainOpens()).toBe(1);
    await writer.update(bump(3)); // a journal line
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(mainOpens()).toBe(1);
    expect((await reader.getStats()).eventCount).toBe(4);
    expect(mainOpens()).toBe(1);

    await writer.update(bump(4));
    await writer.checkpoint(); // a new main file
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(mainOpens()).toBe(2);

    // Writing keeps a view of its own, and lets the main file as last read go.
    await reader.update(bump(5));
    await writer.update(bump(6));
    expect(await ids()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
    expect(mainOpens()).toBe(2);
    await reader.close();
    await writer.close();
  });
});
