// fs-ext ships no types; we use only flock().
declare module 'fs-ext' {
  export function flock(
    fd: number,
    flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un',
    callback: (err: NodeJS.ErrnoException | null) => void,
  ): void;
}
