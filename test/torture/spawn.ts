import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A torture worker (test/workers/torture-*.mjs, importing dist/) and everything it printed. */
export interface TortureChild {
  process: ChildProcess;
  lines: string[];
  /** Resolves when the first line starting with `prefix` arrives, or when the child ends first. */
  line(prefix: string): Promise<string | undefined>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export function startTortureWorker(script: string, args: readonly string[]): TortureChild {
  const path = fileURLToPath(new URL(`../workers/${script}`, import.meta.url));
  const child = spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const listeners: Array<() => void> = [];
  let pending = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    lines.push(...complete);
    for (const listener of listeners.splice(0)) listener();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        ended = true;
        for (const listener of listeners.splice(0)) listener();
        resolve({ code, signal, stderr });
      });
    },
  );
  const line = (prefix: string) =>
    new Promise<string | undefined>((resolve) => {
      const look = () => {
        const found = lines.find((text) => text.startsWith(prefix));
        if (found !== undefined || ended) resolve(found);
        else listeners.push(look);
      };
      look();
    });
  return { process: child, lines, line, exited };
}

/** Numbers from lines such as `ack 12`. */
export function numbersAfter(lines: readonly string[], prefix: string): number[] {
  return lines
    .filter((text) => text.startsWith(`${prefix} `))
    .map((text) => Number(text.slice(prefix.length + 1)));
}
