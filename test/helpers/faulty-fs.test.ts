import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FileSystem, nodeFileSystem } from '../../src/store/file-system.js';
import { METRICS_FILE, MetricsStore } from '../../src/store/metrics-store.js';
import { makeState } from './builders.js';
import { FaultyFileSystem, type FsCall } from './faulty-fs.js';
import { tempDir } from './temp-dir.js';

describe('FaultyFileSystem call log', () => {
  it('keeps the bytes each write was given, though the store reuses its buffer for the next piece', async () => {
    // The logged writes into the main file's temp file (descriptor numbers are reused once closed).
    const tempFile = new Set<number>();
    const tempWrites: FsCall[] = [];
    const inner: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const fd = await nodeFileSystem.open(path, mode, permissions);
        if (basename(path).startsWith(`${METRICS_FILE}.tmp-`)) tempFile.add(fd);
        return fd;
      },
      async write(fd, data, position) {
        if (tempFile.has(fd)) tempWrites.push(faulty.calls.at(-1) as FsCall);
        return nodeFileSystem.write(fd, data, position);
      },
      async close(fd) {
        tempFile.delete(fd);
        return nodeFileSystem.close(fd);
      },
    };
    const faulty = new FaultyFileSystem(inner);
    const store = new MetricsStore({
      projectName: 'log',
      dir: tempDir(),
      maxEvents: 5000,
      fileSystem: faulty.fs,
    });
    // Several 1 MiB pieces of the snapshot's text, each written from the same buffer.
    await store.save(makeState(5000));
    const saved = readFileSync(store.metricsPath);

    expect(tempWrites.length).toBeGreaterThan(2);
    // Compared whole: a deep equality of two 2.6 MB buffers takes seconds.
    expect(Buffer.concat(tempWrites.map((call) => call.args[1] as Buffer)).equals(saved)).toBe(true);
  });
});
