import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { promisify } from 'node:util';
import { flock, flockSync } from 'fs-ext';

/**
 * Every file-system call the store makes goes through this interface, one method per system
 * call, so tests can fail the Nth call (fault injection) or keep un-fsynced data in memory and
 * drop it (power-cut simulation) without touching the store's code.
 */
export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /**
   * The inode's change time: unlike the mtime, no program can set it (utimes sets it to now).
   * Absent where a file system does not tell it.
   */
  ctimeMs?: number;
  mode: number;
  /** How many names the inode has (hard links). Absent where a file system does not tell it. */
  nlink?: number;
}

export type OpenMode =
  /** create a new file for writing; fail if it exists */
  | 'create-exclusive'
  /** read-write, create if missing (lock files) */
  | 'read-write-create'
  /** read-write; fail if missing (appending to a journal that must exist) */
  | 'read-write'
  /** read only (files and folders) */
  | 'read';

export interface FileSystem {
  /** Reads a whole file and the stat of the very inode it read (not of a later replacement). */
  readFile(path: string): Promise<{ data: Buffer; stat: FileStat }>;
  open(path: string, mode: OpenMode, permissions?: number): Promise<number>;
  /**
   * Writes all of `data` at `position`. The store may reuse `data`'s memory once the promise
   * settles (a snapshot is written in pieces of one reused buffer): keep a copy to keep the bytes.
   */
  write(fd: number, data: Uint8Array, position: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  /**
   * fdatasync(2): the data and the size of an appended file, without other metadata. With
   * `background`, other work is waiting for the event loop: the call must not block it.
   */
  fdatasync(fd: number, options?: { background?: boolean }): Promise<void>;
  /** Reads up to `length` bytes at `position`; fewer at the end of the file. */
  read(fd: number, position: number, length: number): Promise<Buffer>;
  fchmod(fd: number, permissions: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fstat(fd: number): Promise<FileStat>;
  close(fd: number): Promise<void>;
  /** flock(LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
  tryLockExclusive(fd: number): Promise<boolean>;
  /**
   * flock(LOCK_EX), blocking until the lock is granted. The kernel hands a released lock to a
   * waiter at once (no polling delay). It cannot be cancelled: a caller that gives up must close
   * `fd` once the promise settles.
   */
  lockExclusive(fd: number): Promise<void>;
  /**
   * flock(LOCK_UN): releases the lock but keeps `fd` open, so the next lock run skips an open and
   * a close. A caller that cannot tell whether it worked closes `fd`, which releases it for sure.
   */
  unlock(fd: number): Promise<void>;
  /**
   * Whether a process is blocked in flock(LOCK_EX) on a file with this inode number (Linux:
   * `/proc/locks`). Absent, or undefined, when it cannot tell: a lock holder then assumes someone
   * waits.
   */
  flockWaiters?(ino: number): Promise<boolean | undefined>;
  stat(path: string): Promise<FileStat>;
  /** The path itself, not what a symbolic link there names. Absent: the store does not tell them apart. */
  lstat?(path: string): Promise<FileStat>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
}

// O_NONBLOCK, which regular files ignore: a FIFO someone put at one of the store's paths would
// make open() (or, opened read-write, the first read) wait for a writer forever, with the event
// loop blocked. With it, the open returns and a read fails (EAGAIN), reported like any I/O error.
const OPEN_FLAGS: Record<OpenMode, number> = {
  'create-exclusive': constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
  'read-write-create': constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK,
  'read-write': constants.O_RDWR | constants.O_NONBLOCK,
  read: constants.O_RDONLY | constants.O_NONBLOCK,
};

/**
 * The error for a FIFO, socket or device at a path the store reads whole: a device such as
 * /dev/zero never ends, and a FIFO waits for a writer. (A folder is left to the read, which fails
 * with EISDIR.)
 */
export function notAFile(path: string, mode: number): Error | undefined {
  const type = mode & constants.S_IFMT;
  if (type === constants.S_IFREG || type === constants.S_IFDIR) return undefined;
  const kind = type === constants.S_IFIFO ? 'a FIFO' : type === constants.S_IFSOCK ? 'a socket' : 'a device';
  return Object.assign(new Error(`ENOTREG: ${kind}, not a regular file`), {
    code: 'ENOTREG',
    path,
  });
}

function toStat(stat: fs.Stats): FileStat {
  return {
    dev: stat.dev,
    ino: stat.ino,
    size: stat.size,
    mtimeMs: stat.mtimeMs,
    ctimeMs: stat.ctimeMs,
    mode: stat.mode,
    nlink: stat.nlink,
  };
}

/**
 * Decides where the next fdatasync of a journal append runs. On the event loop it costs the
 * thread-pool round trip less: measured here, a 2 KB append + fdatasync took 0.35 ms inline and
 * 0.44 ms through the pool (median of 6 × 400), and SQLite, the peer users compare us with, syncs
 * inline too. But an inline call blocks the host's event loop for as long as the disk takes, which
 * on a slow or network disk is many milliseconds: the calls go to the thread pool while a moving
 * average of how long they took (wherever they ran) is above `slowMs`. An average, not the last
 * call: the disk here answers in 0.1–0.3 ms with a call over 2 ms now and then (~0.8 %), and
 * sending the next 100 calls to the pool after each such call cost a lone writer events/s (see
 * the README). A call made while other work waits (`background`, the store's next batch) always
 * goes to the pool.
 */
export class SyncPlacement {
  private average = 0;

  constructor(
    private readonly slowMs = 2,
    /** How much one call moves the average: 0.2 lets a 25 ms call send ~6 fast ones to the pool. */
    private readonly weight = 0.2,
  ) {}

  /** True when the next call should run inline. */
  inline(): boolean {
    return this.average <= this.slowMs;
  }

  /** How long a call took, inline or on the thread pool. */
  took(ms: number): void {
    this.average += this.weight * (ms - this.average);
  }
}

const journalSyncPlacement = new SyncPlacement();

const fsyncAsync = promisify(fs.fsync);
const fdatasyncAsync = promisify(fs.fdatasync);
const readAsync = promisify(fs.read);

function readAllSync(fd: number, size: number): Buffer {
  // Read until EOF rather than trusting `size`: the file may have grown since fstat. One spare
  // byte lets the read that finds EOF fit without doubling (and copying) the whole buffer.
  let buffer = Buffer.allocUnsafe(Math.max(size + 1, 4096));
  let length = 0;
  for (;;) {
    if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
    const bytesRead = fs.readSync(fd, buffer, length, buffer.length - length, length);
    if (bytesRead === 0) return buffer.subarray(0, length);
    length += bytesRead;
  }
}

async function readAll(fd: number, size: number): Promise<Buffer> {
  let buffer = Buffer.allocUnsafe(Math.max(size + 1, 4096));
  let length = 0;
  for (;;) {
    if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
    const { bytesRead } = await readAsync(fd, buffer, length, buffer.length - length, length);
    if (bytesRead === 0) return buffer.subarray(0, length);
    length += bytesRead;
  }
}

/** Files up to this size are read with one synchronous call: a thread-pool round trip costs more. */
const SMALL_READ_BYTES = 256 * 1024;

/**
 * The real file system (node:fs plus fs-ext's flock).
 *
 * Calls that never wait for the disk (open, stat, a write into the page cache, a non-blocking
 * flock, …) run synchronously inside the async method: each takes a few microseconds, while a
 * round trip through libuv's thread pool costs 20–50 µs, several times per recorded event.
 * Calls that wait for the disk or for another process (fsync, a blocking flock, reading a large
 * file) stay asynchronous, so the host's event loop keeps running meanwhile. fdatasync, the one
 * on every recorded event, runs inline while the disk answers fast (see `SyncPlacement`).
 */
export const nodeFileSystem: FileSystem = {
  async readFile(path) {
    const fd = fs.openSync(path, OPEN_FLAGS.read);
    try {
      const stat = toStat(fs.fstatSync(fd));
      const unreadable = notAFile(path, stat.mode);
      if (unreadable) throw unreadable;
      const data = stat.size <= SMALL_READ_BYTES ? readAllSync(fd, stat.size) : await readAll(fd, stat.size);
      return { data, stat };
    } finally {
      fs.closeSync(fd);
    }
  },
  open: async (path, mode, permissions = 0o600) => fs.openSync(path, OPEN_FLAGS[mode], permissions),
  async write(fd, data, position) {
    let offset = 0;
    while (offset < data.length) {
      offset += fs.writeSync(fd, data, offset, data.length - offset, position + offset);
    }
  },
  fsync: (fd) => fsyncAsync(fd),
  async fdatasync(fd, options) {
    if (options?.background) return fdatasyncAsync(fd);
    const started = performance.now();
    try {
      if (journalSyncPlacement.inline()) fs.fdatasyncSync(fd);
      else await fdatasyncAsync(fd);
    } finally {
      journalSyncPlacement.took(performance.now() - started);
    }
  },
  async read(fd, position, length) {
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const bytesRead = fs.readSync(fd, buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  },
  fchmod: async (fd, permissions) => fs.fchmodSync(fd, permissions),
  ftruncate: async (fd, length) => fs.ftruncateSync(fd, length),
  fstat: async (fd) => toStat(fs.fstatSync(fd)),
  close: async (fd) => fs.closeSync(fd),
  async tryLockExclusive(fd) {
    try {
      flockSync(fd, 'exnb');
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
      throw error;
    }
  },
  // Runs flock(2) in libuv's thread pool: one thread waits in the kernel while the event loop
  // goes on. The store waits for at most one lock per project at a time (its in-process queue).
  lockExclusive: (fd) =>
    new Promise((resolve, reject) => {
      flock(fd, 'ex', (error) => (error ? reject(error) : resolve()));
    }),
  // Never waits: releasing a lock is immediate.
  unlock: async (fd) => flockSync(fd, 'un'),
  flockWaiters: async (ino) => hasFlockWaiters(ino),
  stat: async (path) => toStat(fs.statSync(path)),
  lstat: async (path) => toStat(fs.lstatSync(path)),
  rename: async (from, to) => fs.renameSync(from, to),
  link: async (existing, newPath) => fs.linkSync(existing, newPath),
  unlink: async (path) => fs.unlinkSync(path),
  readdir: async (dir) => fs.readdirSync(dir),
  mkdir: async (dir) => {
    fs.mkdirSync(dir, { recursive: true });
  },
};

/** More of /proc/locks than this (a host holding thousands of locks) is not read: "cannot tell". */
const PROC_LOCKS_MAX_BYTES = 64 * 1024;
let procLocksBuffer: Buffer | undefined;

/**
 * Whether /proc/locks lists a blocked flock waiter (`->`) on a file with inode number `ino`;
 * undefined when it cannot tell (no /proc, or a table too large to read whole). A line names the file
 * as `MAJOR:MINOR:INODE`: `1: -> FLOCK  ADVISORY  WRITE 4747 fe:00:2171165 0 EOF`. The inode alone
 * is matched: the device there is the file system's, which is not always the `dev` that stat
 * gives (overlayfs, btrfs subvolumes), and a waiter on another device's file with the same number
 * only makes a holder give the lock up early. Hand-written: no library reads the kernel's lock
 * table, and flock(2) itself cannot tell.
 */
export function hasFlockWaiters(ino: number, path = '/proc/locks'): boolean | undefined {
  let text: string;
  try {
    const fd = fs.openSync(path, constants.O_RDONLY);
    try {
      // One buffer for every read (the function is synchronous): a lease holder reads the table
      // every few milliseconds, and a fresh 64 KiB each time cost 10–19 µs and garbage.
      procLocksBuffer ??= Buffer.allocUnsafe(PROC_LOCKS_MAX_BYTES);
      const buffer = procLocksBuffer;
      let length = 0;
      for (;;) {
        const read = fs.readSync(fd, buffer, length, buffer.length - length, null);
        if (read === 0) break;
        length += read;
        if (length === buffer.length) return undefined;
      }
      text = buffer.toString('latin1', 0, length);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const inode = `:${ino} `;
  for (const line of text.split('\n')) {
    if (line.includes(' -> FLOCK ') && line.includes(inode)) return true;
  }
  return false;
}

/** fsync of a folder, so that a rename inside it survives a power cut. */
export async function fsyncDirectory(fileSystem: FileSystem, dir: string): Promise<void> {
  const fd = await fileSystem.open(dir, 'read');
  try {
    await fileSystem.fsync(fd);
  } finally {
    // Once the fsync has answered, a failing close of a read-only folder descriptor changes nothing.
    await fileSystem.close(fd).catch(() => undefined);
  }
}
