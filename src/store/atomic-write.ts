import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { StorageIOError } from '../errors.js';
import { type FileStat, type FileSystem, fsyncDirectory } from './file-system.js';

/**
 * `'fsync'`: a write resolves only once the file and its folder entry are on disk.
 * `'none'`: skips both fsyncs. Writes stay atomic (readers see the old or the new file) and
 * survive a crash of the process, but an OS crash or power cut may lose the last acknowledged
 * writes, and on some file systems leave an empty main file (the `.bak`, not fsynced either, may
 * be lost too: then the project starts fresh, with the empty file kept aside).
 */
export type Durability = 'fsync' | 'none';

export interface AtomicWriteOptions {
  fileMode: number;
  durability: Durability;
}

const TEMP_MARKER = '.tmp-';

/** Temp files of `target` are named `<target>.tmp-<pid>-<random>`, in the same folder. */
export function tempPathFor(target: string): string {
  return `${target}${TEMP_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`;
}

export function isTempFileOf(target: string, name: string): boolean {
  return name.startsWith(`${basename(target)}${TEMP_MARKER}`);
}

async function step<T>(operation: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new StorageIOError(operation, path, error);
  }
}

/**
 * Replaces `target` with `data` atomically: unique temp file in the same folder → write → fsync →
 * rename over `target` → fsync the folder. On failure before the rename the temp file is removed
 * and `target` is untouched. Returns the stat of the written inode (now at `target`).
 *
 * A failed fsync is reported, never retried: after a failed fsync the kernel may have dropped the
 * dirty pages and a second fsync can "succeed" without the data ever reaching the disk.
 */
export async function writeFileAtomic(
  fileSystem: FileSystem,
  target: string,
  data: Uint8Array,
  options: AtomicWriteOptions,
): Promise<FileStat> {
  const temp = tempPathFor(target);
  const fd = await step('create temp file', temp, () =>
    fileSystem.open(temp, 'create-exclusive', options.fileMode),
  );
  let open = true;
  let stat: FileStat;
  try {
    // open() applies the umask; fchmod makes the mode exactly the configured one.
    await step('chmod', temp, () => fileSystem.fchmod(fd, options.fileMode));
    await step('write', temp, () => fileSystem.write(fd, data, 0));
    if (options.durability === 'fsync') await step('fsync', temp, () => fileSystem.fsync(fd));
    stat = await step('fstat', temp, () => fileSystem.fstat(fd));
    open = false;
    await step('close', temp, () => fileSystem.close(fd));
    await step('rename', target, () => fileSystem.rename(temp, target));
  } catch (error) {
    if (open) await fileSystem.close(fd).catch(() => undefined);
    await fileSystem.unlink(temp).catch(() => undefined);
    throw error;
  }
  if (options.durability === 'fsync') {
    const dir = dirname(target);
    try {
      await fsyncDirectory(fileSystem, dir);
    } catch (error) {
      throw new StorageIOError('fsync folder', dir, error, true);
    }
  }
  return stat;
}

/** Removes temp files left in `dir` by writers of `targets` that crashed. Call only under the lock. */
export async function sweepTempFiles(fileSystem: FileSystem, dir: string, targets: readonly string[]) {
  let names: string[];
  try {
    names = await fileSystem.readdir(dir);
  } catch {
    return; // Sweeping is housekeeping: never fail a write over it.
  }
  for (const name of names) {
    if (targets.some((target) => isTempFileOf(target, name))) {
      await fileSystem.unlink(`${dir}/${name}`).catch(() => undefined);
    }
  }
}
