import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const WORKERS = fileURLToPath(new URL('../workers/', import.meta.url));

export interface Worker {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (rejects if the child exits first). */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Resolves with the exit code (or the signal name) and everything printed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string[]; stderr: string }>;
}

/** Starts `node test/workers/<script>` with `args`; the workers import the built package (dist/). */
export function startWorker(script: string, args: readonly (string | number)[]): Worker {
  const child = spawn(process.execPath, [`${WORKERS}${script}`, ...args.map(String)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    stdout.push(line);
    for (const waiter of waiters.splice(0)) {
      if (waiter.pattern.test(line)) waiter.resolve(line);
      else waiters.push(waiter);
    }
  });
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string[];
    stderr: string;
  }>((resolve) => {
    child.on('close', (code, signal) => {
      for (const waiter of waiters.splice(0)) {
        waiter.reject(
          new Error(`worker exited (${code ?? signal}) before printing ${waiter.pattern}: ${stderr}`),
        );
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    exited,
    waitForLine: (pattern) =>
      new Promise((resolve, reject) => {
        const seen = stdout.find((line) => pattern.test(line));
        if (seen !== undefined) resolve(seen);
        else if (child.exitCode !== null || child.signalCode !== null)
          reject(new Error('worker already exited'));
        else waiters.push({ pattern, resolve, reject });
      }),
  };
}

/** Runs workers to completion and fails with their stderr if any exits non-zero. */
export async function runWorkers(script: string, argsList: ReadonlyArray<readonly (string | number)[]>) {
  const results = await Promise.all(argsList.map((args) => startWorker(script, args).exited));
  for (const result of results) {
    if (result.code !== 0)
      throw new Error(`worker ${script} failed (${result.code ?? result.signal}): ${result.stderr}`);
  }
  return results;
}
