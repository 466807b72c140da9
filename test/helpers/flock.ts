import { nodeFileSystem } from '../../src/store/file-system.js';

/** True when a fresh open file can take the flock of `path`: what another process would find. */
export async function flockIsFree(path: string): Promise<boolean> {
  const fd = await nodeFileSystem.open(path, 'read');
  try {
    const free = await nodeFileSystem.tryLockExclusive(fd);
    if (free) await nodeFileSystem.unlock(fd);
    return free;
  } finally {
    await nodeFileSystem.close(fd);
  }
}
