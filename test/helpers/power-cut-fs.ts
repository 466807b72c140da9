import { basename, dirname } from 'node:path';
import type { FileStat, FileSystem, OpenMode } from '../../src/store/file-system.js';

/**
 * An in-memory file system that knows what is on disk and what is only in the page cache, and can
 * simulate a power cut: `crashImage()` returns a new file system holding only what was durable.
 *
 * The model (the guarantees POSIX gives, and the ones crash-consistency studies such as ALICE
 * found applications wrongly rely on):
 * - file contents written by `write`/`ftruncate` become durable only when that file is fsynced;
 *   a file whose name survived a power cut but whose data never reached the disk comes back empty
 *   (what ext4's delayed allocation typically leaves);
 * - folder entries (create, rename, link, unlink, mkdir) become durable only when the folder that
 *   holds them is fsynced; fsync of a file does not persist its name.
 * A real disk may persist more than this; nothing it persists is guaranteed to survive, so an
 * acknowledged write must survive under this model.
 */

interface Inode {
  id: number;
  kind: 'file' | 'dir';
  data: Buffer;
  /** File contents as of the last fsync; undefined when never fsynced. */
  durableData: Buffer | undefined;
  mode: number;
  mtime: number;
  /** Folders: name → inode id, as the page cache sees it and as the disk has it. */
  entries: Map<string, number>;
  durableEntries: Map<string, number>;
  lockedBy: number | undefined;
  /** Blocked `lockExclusive` calls, granted in order as the lock is released. */
  lockWaiters: Array<{ fd: number; grant: () => void }>;
}

interface OpenFile {
  inode: Inode;
  writable: boolean;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

export class PowerCutFileSystem implements FileSystem {
  private readonly inodes = new Map<number, Inode>();
  private readonly files = new Map<number, OpenFile>();
  private nextInode = 2;
  private nextFd = 100;
  private clock = 1;
  private root: Inode;

  constructor() {
    this.root = this.newInode('dir', 0o700);
    // The root exists on disk from the start.
  }

  /** A new file system holding only what was durable at this moment: the state after a power cut. */
  crashImage(): PowerCutFileSystem {
    const image = new PowerCutFileSystem();
    image.inodes.clear();
    for (const inode of this.inodes.values()) {
      const data = inode.durableData ?? Buffer.alloc(0);
      image.inodes.set(inode.id, {
        id: inode.id,
        kind: inode.kind,
        data: Buffer.from(data),
        durableData: Buffer.from(data),
        mode: inode.mode,
        mtime: inode.mtime,
        entries: new Map(inode.durableEntries),
        durableEntries: new Map(inode.durableEntries),
        lockedBy: undefined,
        lockWaiters: [],
      });
    }
    image.root = image.inodes.get(this.root.id) as Inode;
    image.nextInode = this.nextInode;
    image.clock = this.clock;
    return image;
  }

  /** Names in `dir` (no error when it does not exist): for assertions. */
  list(dir: string): string[] {
    const inode = this.lookup(dir);
    return inode?.kind === 'dir' ? [...inode.entries.keys()].sort() : [];
  }

  /** Contents of `path`, or undefined: for assertions and for planting corrupt files. */
  contents(path: string): Buffer | undefined {
    const inode = this.lookup(path);
    return inode?.kind === 'file' ? Buffer.from(inode.data) : undefined;
  }

  async readFile(path: string): Promise<{ data: Buffer; stat: FileStat }> {
    const inode = this.existing(path, 'open');
    if (inode.kind === 'dir') throw fsError('EISDIR', 'read', path);
    return { data: Buffer.from(inode.data), stat: this.statOf(inode) };
  }

  async open(path: string, mode: OpenMode, permissions = 0o600): Promise<number> {
    let inode = this.lookup(path);
    if (mode === 'create-exclusive' && inode) throw fsError('EEXIST', 'open', path);
    if (!inode) {
      if (mode === 'read' || mode === 'read-write') throw fsError('ENOENT', 'open', path);
      const parent = this.existing(dirname(path), 'open');
      inode = this.newInode('file', permissions);
      parent.entries.set(basename(path), inode.id);
      this.touch(parent);
    } else if (inode.kind === 'dir' && mode !== 'read') {
      throw fsError('EISDIR', 'open', path);
    }
    const fd = this.nextFd++;
    this.files.set(fd, { inode, writable: mode !== 'read' });
    return fd;
  }

  async write(fd: number, data: Uint8Array, position: number): Promise<void> {
    const file = this.openFile(fd, 'write');
    if (!file.writable) throw fsError('EBADF', 'write', String(fd));
    const inode = file.inode;
    const end = position + data.length;
    if (end > inode.data.length) {
      const grown = Buffer.alloc(end);
      inode.data.copy(grown);
      inode.data = grown;
    }
    Buffer.from(data).copy(inode.data, position);
    this.touch(inode);
  }

  async fsync(fd: number): Promise<void> {
    const { inode } = this.openFile(fd, 'fsync');
    if (inode.kind === 'file') inode.durableData = Buffer.from(inode.data);
    else inode.durableEntries = new Map(inode.entries);
  }

  async fdatasync(fd: number): Promise<void> {
    await this.fsync(fd);
  }

  async read(fd: number, position: number, length: number): Promise<Buffer> {
    const { inode } = this.openFile(fd, 'read');
    return Buffer.from(inode.data.subarray(position, position + length));
  }

  async fchmod(fd: number, permissions: number): Promise<void> {
    this.openFile(fd, 'fchmod').inode.mode = permissions;
  }

  async ftruncate(fd: number, length: number): Promise<void> {
    const { inode } = this.openFile(fd, 'ftruncate');
    const resized = Buffer.alloc(length);
    inode.data.copy(resized, 0, 0, Math.min(length, inode.data.length));
    inode.data = resized;
    this.touch(inode);
  }

  async fstat(fd: number): Promise<FileStat> {
    return this.statOf(this.openFile(fd, 'fstat').inode);
  }

  async close(fd: number): Promise<void> {
    const { inode } = this.openFile(fd, 'close');
    this.files.delete(fd);
    inode.lockWaiters = inode.lockWaiters.filter((waiter) => this.files.has(waiter.fd));
    this.releaseLock(inode, fd);
  }

  /** An in-memory disk has no lock table to look in: "cannot tell", so a holder assumes someone waits. */
  async flockWaiters(_ino: number): Promise<boolean | undefined> {
    return undefined;
  }

  async unlock(fd: number): Promise<void> {
    this.releaseLock(this.openFile(fd, 'flock').inode, fd);
  }

  async tryLockExclusive(fd: number): Promise<boolean> {
    const { inode } = this.openFile(fd, 'flock');
    if (inode.lockedBy !== undefined && inode.lockedBy !== fd) return false;
    inode.lockedBy = fd;
    return true;
  }

  lockExclusive(fd: number): Promise<void> {
    const { inode } = this.openFile(fd, 'flock');
    if (inode.lockedBy === undefined || inode.lockedBy === fd) {
      inode.lockedBy = fd;
      return Promise.resolve();
    }
    return new Promise((grant) => inode.lockWaiters.push({ fd, grant }));
  }

  async stat(path: string): Promise<FileStat> {
    return this.statOf(this.existing(path, 'stat'));
  }

  /** This disk has no symbolic links: the same as `stat`. */
  async lstat(path: string): Promise<FileStat> {
    return this.statOf(this.existing(path, 'lstat'));
  }

  async rename(from: string, to: string): Promise<void> {
    const inode = this.existing(from, 'rename');
    const source = this.existing(dirname(from), 'rename');
    const target = this.existing(dirname(to), 'rename');
    const replaced = this.lookup(to);
    if (replaced?.kind === 'dir') throw fsError('EISDIR', 'rename', to);
    source.entries.delete(basename(from));
    target.entries.set(basename(to), inode.id);
    this.touch(source);
    this.touch(target);
  }

  async link(existing: string, newPath: string): Promise<void> {
    const inode = this.existing(existing, 'link');
    if (inode.kind === 'dir') throw fsError('EPERM', 'link', existing);
    if (this.lookup(newPath)) throw fsError('EEXIST', 'link', newPath);
    const parent = this.existing(dirname(newPath), 'link');
    parent.entries.set(basename(newPath), inode.id);
    this.touch(parent);
  }

  async unlink(path: string): Promise<void> {
    const inode = this.existing(path, 'unlink');
    if (inode.kind === 'dir') throw fsError('EISDIR', 'unlink', path);
    const parent = this.existing(dirname(path), 'unlink');
    parent.entries.delete(basename(path));
    this.touch(parent);
  }

  async readdir(dir: string): Promise<string[]> {
    const inode = this.existing(dir, 'scandir');
    if (inode.kind !== 'dir') throw fsError('ENOTDIR', 'scandir', dir);
    return [...inode.entries.keys()];
  }

  /** Like `mkdir -p`: creates every missing folder; each new entry is volatile until its parent is fsynced. */
  async mkdir(dir: string): Promise<void> {
    const existing = this.lookup(dir);
    if (existing) {
      if (existing.kind !== 'dir') throw fsError('EEXIST', 'mkdir', dir);
      return;
    }
    await this.mkdir(dirname(dir));
    const parent = this.existing(dirname(dir), 'mkdir');
    const inode = this.newInode('dir', 0o700);
    parent.entries.set(basename(dir), inode.id);
    this.touch(parent);
  }

  /** Releases `fd`'s lock, if it holds it, handing it to the longest waiter. */
  private releaseLock(inode: Inode, fd: number): void {
    if (inode.lockedBy !== fd) return;
    inode.lockedBy = undefined;
    const next = inode.lockWaiters.shift();
    if (next) {
      inode.lockedBy = next.fd;
      next.grant();
    }
  }

  private newInode(kind: Inode['kind'], mode: number): Inode {
    const inode: Inode = {
      id: this.nextInode++,
      kind,
      data: Buffer.alloc(0),
      durableData: undefined,
      mode,
      mtime: this.clock++,
      entries: new Map(),
      // A new inode's own entries start empty on disk too; an empty folder needs no fsync.
      durableEntries: new Map(),
      lockedBy: undefined,
      lockWaiters: [],
    };
    this.inodes.set(inode.id, inode);
    return inode;
  }

  private touch(inode: Inode): void {
    inode.mtime = this.clock++;
  }

  private lookup(path: string): Inode | undefined {
    if (!path.startsWith('/')) throw new Error(`PowerCutFileSystem wants absolute paths, got ${path}`);
    let inode: Inode | undefined = this.root;
    for (const name of path.split('/').filter((part) => part !== '')) {
      if (inode?.kind !== 'dir') return undefined;
      const id = inode.entries.get(name);
      inode = id === undefined ? undefined : this.inodes.get(id);
    }
    return inode;
  }

  private existing(path: string, syscall: string): Inode {
    const inode = this.lookup(path);
    if (!inode) throw fsError('ENOENT', syscall, path);
    return inode;
  }

  private openFile(fd: number, syscall: string): OpenFile {
    const file = this.files.get(fd);
    if (!file) throw fsError('EBADF', syscall, String(fd));
    return file;
  }

  private statOf(inode: Inode): FileStat {
    return {
      dev: 1,
      ino: inode.id,
      size: inode.data.length,
      mtimeMs: inode.mtime,
      mode: (inode.kind === 'dir' ? S_IFDIR : S_IFREG) | inode.mode,
    };
  }
}
