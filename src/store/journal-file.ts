import { errnoCode, StorageIOError } from '../errors.js';
import type { FileStat, FileSystem } from './file-system.js';

/** A journal file's identity: its inode. Appends change its size, never its identity. */
export function inodeOf(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}`;
}

async function io<T>(operation: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new StorageIOError(operation, path, error);
  }
}

/** The bytes of `path` from `from` to its end, with the inode read; undefined when it does not exist. */
export async function readFrom(
  fileSystem: FileSystem,
  path: string,
  from: number,
): Promise<{ data: Buffer; stat: FileStat } | undefined> {
  let fd: number;
  try {
    fd = await fileSystem.open(path, 'read');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new StorageIOError('read', path, error);
  }
  try {
    const stat = await io('read', path, () => fileSystem.fstat(fd));
    const data = await io('read', path, () => fileSystem.read(fd, from, Math.max(0, stat.size - from)));
    return { data, stat };
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}

export interface AppendOptions {
  /** Where the file ends now; the data goes there. */
  offset: number;
  /** The inode the caller read; a different file at `path` is an error, never appended to. */
  inode: string;
  sync: boolean;
}

/**
 * Appends `data` at `offset` and (with `sync`) fdatasyncs it: once this resolves the lines are
 * on disk. On failure it cuts the file back to `offset`, so a change reported as failed never
 * shows up later; the error's `committed` says whether that cut failed (the lines may then be
 * read back).
 */
export async function appendDurably(
  fileSystem: FileSystem,
  path: string,
  data: Uint8Array,
  options: AppendOptions,
): Promise<void> {
  const fd = await io('open journal', path, () => fileSystem.open(path, 'read-write'));
  try {
    const stat = await io('append to journal', path, () => fileSystem.fstat(fd));
    if (inodeOf(stat) !== options.inode || stat.size !== options.offset) {
      throw new StorageIOError(
        'append to journal',
        path,
        new Error('the journal changed behind the lock (replaced or written by a process not holding it)'),
      );
    }
    try {
      await fileSystem.write(fd, data, options.offset);
      if (options.sync) await fileSystem.fdatasync(fd);
    } catch (error) {
      const cut = await fileSystem.ftruncate(fd, options.offset).then(
        () => true,
        () => false,
      );
      throw new StorageIOError('append to journal', path, error, !cut);
    }
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}

/** Cuts the torn end of an interrupted write off the journal (under the lock). */
export async function truncateDurably(
  fileSystem: FileSystem,
  path: string,
  length: number,
  sync: boolean,
): Promise<void> {
  const fd = await io('open journal', path, () => fileSystem.open(path, 'read-write'));
  try {
    await io('truncate journal', path, async () => {
      await fileSystem.ftruncate(fd, length);
      if (sync) await fileSystem.fdatasync(fd);
    });
  } finally {
    await fileSystem.close(fd).catch(() => undefined);
  }
}
