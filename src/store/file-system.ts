import * as fs from 'node:fs';
import { constants, promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { flock } from 'fs-ext';

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
  mode: number;
}

export type OpenMode =
  /** create a new file for writing; fail if it exists */
  | 'create-exclusive'
  /** read-write, create if missing (lock files) */
  | 'read-write-create'
  /** read only (files and folders) */
  | 'read';

export interface FileSystem {
  /** Reads a whole file and the stat of the very inode it read (not of a later replacement). */
  readFile(path: string): Promise<{ data: Buffer; stat: FileStat }>;
  open(path: string, mode: OpenMode, permissions?: number): Promise<number>;
  /** Writes all of `data` at `position`. */
  write(fd: number, data: Uint8Array, position: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  fchmod(fd: number, permissions: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fstat(fd: number): Promise<FileStat>;
  close(fd: number): Promise<void>;
  /** flock(LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
  tryLockExclusive(fd: number): Promise<boolean>;
  stat(path: string): Promise<FileStat>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
}

const OPEN_FLAGS: Record<OpenMode, number> = {
  'create-exclusive': constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
  'read-write-create': constants.O_RDWR | constants.O_CREAT,
  read: constants.O_RDONLY,
};

function toStat(stat: fs.Stats): FileStat {
  return { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, mode: stat.mode };
}

const writeAsync = promisify(fs.write);
const fsyncAsync = promisify(fs.fsync);
const fchmodAsync = promisify(fs.fchmod);
const ftruncateAsync = promisify(fs.ftruncate);
const fstatAsync = promisify(fs.fstat);
const closeAsync = promisify(fs.close);
const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);

async function readAll(fd: number, size: number): Promise<Buffer> {
  // Read until EOF rather than trusting `size`: the file may have grown since fstat. One spare
  // byte lets the read that finds EOF fit without doubling (and copying) the whole buffer.
  let buffer = Buffer.allocUnsafe(Math.max(size + 1, 4096));
  let length = 0;
  for (;;) {
    if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
    const { bytesRead } = await readAsync(fd, buffer, length, buffer.length - length, length);
    if (bytesRead === 0) return buffer.subarray(0, length);
    length += bytesRead;
  }
}

/** The real file system (node:fs plus fs-ext's flock). */
export const nodeFileSystem: FileSystem = {
  async readFile(path) {
    const fd = await openAsync(path, constants.O_RDONLY);
    try {
      const stat = toStat(await fstatAsync(fd));
      return { data: await readAll(fd, stat.size), stat };
    } finally {
      await closeAsync(fd);
    }
  },
  open: (path, mode, permissions = 0o600) => openAsync(path, OPEN_FLAGS[mode], permissions),
  async write(fd, data, position) {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await writeAsync(fd, data, offset, data.length - offset, position + offset);
      offset += bytesWritten;
    }
  },
  fsync: (fd) => fsyncAsync(fd),
  fchmod: (fd, permissions) => fchmodAsync(fd, permissions),
  ftruncate: (fd, length) => ftruncateAsync(fd, length),
  fstat: async (fd) => toStat(await fstatAsync(fd)),
  close: (fd) => closeAsync(fd),
  tryLockExclusive: (fd) =>
    new Promise((resolve, reject) => {
      flock(fd, 'exnb', (error) => {
        if (!error) resolve(true);
        else if (error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK') resolve(false);
        else reject(error);
      });
    }),
  stat: async (path) => toStat(await fsp.stat(path)),
  rename: (from, to) => fsp.rename(from, to),
  link: (existing, newPath) => fsp.link(existing, newPath),
  unlink: (path) => fsp.unlink(path),
  readdir: (dir) => fsp.readdir(dir),
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
};

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
