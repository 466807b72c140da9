import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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

/**
 * Temp files this process is writing now, by resolved path (`./p`, `p//x`, `/` spell folders
 * differently): the sweep must leave them alone.
 */
const inProgress = new Set<string>();

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

/** File contents: one buffer, or pieces written one after the other (large files, less memory). */
export type FileContents = Uint8Array | Iterable<Uint8Array>;

/** A complete, durable temp file waiting to be renamed over its target. */
export interface PreparedFile {
  temp: string;
  target: string;
  /** Stat of the temp file's inode (the target's once renamed). */
  stat: FileStat;
}

/**
 * First half of an atomic replace: unique temp file in the target's folder → write → fsync.
 * On failure the temp file is removed. Needs no lock: the name is unique.
 */
export async function prepareFile(
  fileSystem: FileSystem,
  target: string,
  contents: FileContents,
  options: AtomicWriteOptions,
): Promise<PreparedFile> {
  const temp = tempPathFor(target);
  inProgress.add(resolve(temp));
  let fd: number;
  try {
    fd = await step('create temp file', temp, () =>
      fileSystem.open(temp, 'create-exclusive', options.fileMode),
    );
  } catch (error) {
    inProgress.delete(resolve(temp));
    throw error;
  }
  let open = true;
  try {
    // open() applies the umask; fchmod makes the mode exactly the configured one.
    await step('chmod', temp, () => fileSystem.fchmod(fd, options.fileMode));
    let position = 0;
    for (const piece of contents instanceof Uint8Array ? [contents] : contents) {
      await step('write', temp, () => fileSystem.write(fd, piece, position));
      position += piece.length;
    }
    if (options.durability === 'fsync') await step('fsync', temp, () => fileSystem.fsync(fd));
    const stat = await step('fstat', temp, () => fileSystem.fstat(fd));
    open = false;
    await step('close', temp, () => fileSystem.close(fd));
    return { temp, target, stat };
  } catch (error) {
    if (open) await fileSystem.close(fd).catch(() => undefined);
    await fileSystem.unlink(temp).catch(() => undefined);
    inProgress.delete(resolve(temp));
    throw error;
  }
}

/** Removes a prepared file that will not be committed (a failed or abandoned write). */
export async function discardFile(fileSystem: FileSystem, prepared: PreparedFile): Promise<void> {
  await fileSystem.unlink(prepared.temp).catch(() => undefined);
  inProgress.delete(resolve(prepared.temp));
}

/**
 * Second half: rename the temp file over its target, then fsync the folder. A failed rename
 * removes the temp file and leaves the target untouched. A failed folder fsync is an error with
 * `committed: true` (the new file is in place; only its durability is in doubt).
 *
 * A failed fsync is reported, never retried: after a failed fsync the kernel may have dropped the
 * dirty pages and a second fsync can "succeed" without the data ever reaching the disk.
 */
export async function commitFile(
  fileSystem: FileSystem,
  prepared: PreparedFile,
  options: AtomicWriteOptions,
): Promise<FileStat> {
  try {
    await step('rename', prepared.target, () => fileSystem.rename(prepared.temp, prepared.target));
  } catch (error) {
    await discardFile(fileSystem, prepared);
    throw error;
  } finally {
    inProgress.delete(resolve(prepared.temp));
  }
  if (options.durability === 'fsync') {
    const dir = dirname(prepared.target);
    try {
      await fsyncDirectory(fileSystem, dir);
    } catch (error) {
      throw new StorageIOError('fsync folder', dir, error, true);
    }
  }
  return prepared.stat;
}

/**
 * Replaces `target` with `contents` atomically and durably (`prepareFile` then `commitFile`):
 * readers see the old file or the new one, never a mix. Returns the stat of the written inode.
 */
export async function writeFileAtomic(
  fileSystem: FileSystem,
  target: string,
  contents: FileContents,
  options: AtomicWriteOptions,
): Promise<FileStat> {
  return commitFile(fileSystem, await prepareFile(fileSystem, target, contents, options), options);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A killed child its parent has not reaped yet still answers kill(0): a zombie writes nothing.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

/** The pid in a temp file's name (`<target>.tmp-<pid>-<random>`), if any. */
function writerOf(name: string): number | undefined {
  const marker = name.lastIndexOf(TEMP_MARKER);
  const pid = marker < 0 ? Number.NaN : Number.parseInt(name.slice(marker + TEMP_MARKER.length), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Whether the temp file `name` in `dir` was left by a writer that is gone, which the sweep removes:
 * not one this process is writing, nor one of another live process (its pid in the name). `repair`
 * and `stats` list temp files by this rule too, so they never plan what the sweep will not do.
 */
export function isLeftoverTempFile(dir: string, name: string): boolean {
  if (inProgress.has(resolve(dir, name))) return false;
  const pid = writerOf(name);
  return pid === undefined || pid === process.pid || !isAlive(pid);
}

/**
 * Removes temp files left in `dir` by writers of `targets` that crashed or failed. Temp files
 * being written (by this process, or by another live one) are kept: a checkpoint writes its
 * snapshot before it takes the lock. Call only under the lock.
 */
export async function sweepTempFiles(fileSystem: FileSystem, dir: string, targets: readonly string[]) {
  let names: string[];
  try {
    names = await fileSystem.readdir(dir);
  } catch {
    return; // Sweeping is housekeeping: never fail a write over it.
  }
  for (const name of names) {
    if (!targets.some((target) => isTempFileOf(target, name)) || !isLeftoverTempFile(dir, name)) continue;
    await fileSystem.unlink(join(dir, name)).catch(() => undefined);
  }
}
