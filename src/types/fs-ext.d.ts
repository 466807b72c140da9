// fs-ext ships no types; we use only flock() and flockSync().
declare module 'fs-ext' {
  type FlockFlags = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
  export function flock(
    fd: number,
    flags: FlockFlags,
    callback: (err: NodeJS.ErrnoException | null) => void,
  ): void;
  /** Throws an errno error (`EAGAIN` / `EWOULDBLOCK` when a non-blocking lock is busy). */
  export function flockSync(fd: number, flags: FlockFlags): void;
}
