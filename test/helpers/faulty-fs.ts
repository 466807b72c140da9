import type { FileSystem } from '../../src/store/file-system.js';
import { nodeFileSystem } from '../../src/store/file-system.js';

export type FsMethod = keyof FileSystem;

export interface FsCall {
  method: FsMethod;
  /** The call's arguments; a Buffer is copied, as the store reuses some of its write buffers. */
  args: unknown[];
}

/** `args` with each Buffer copied: what a call was given, not what its buffer holds later. */
export function asCalled(args: readonly unknown[]): unknown[] {
  return args.map((arg) => (Buffer.isBuffer(arg) ? Buffer.from(arg) : arg));
}

export interface FaultPlan {
  /** 1-based index of the first call (among matching calls) that fails. */
  failAt: number;
  /** errno code of the injected error. */
  code: string;
  /** Fail every matching call from `failAt` on, not just that one. */
  persistent?: boolean;
  /** Only calls to these methods count and fail; all methods when absent. */
  methods?: readonly FsMethod[];
}

function errnoError(code: string, method: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected fault in ${method}`);
  error.code = code;
  return error;
}

/**
 * The real file system with a call log and SQLite-style fault injection: the Nth call fails
 * (once, or from then on). `plan` can be changed or cleared between operations.
 */
export class FaultyFileSystem {
  readonly calls: FsCall[] = [];
  plan: FaultPlan | undefined;
  injected = 0;
  private matching = 0;
  readonly fs: FileSystem;

  constructor(private readonly inner: FileSystem = nodeFileSystem) {
    const wrapped: Partial<Record<FsMethod, unknown>> = {};
    for (const method of Object.keys(inner) as FsMethod[]) {
      wrapped[method] = (...args: unknown[]) => this.call(method, args);
    }
    this.fs = wrapped as FileSystem;
  }

  /** Starts counting anew with `plan` (or none). */
  arm(plan: FaultPlan | undefined): void {
    this.plan = plan;
    this.matching = 0;
    this.injected = 0;
    this.calls.length = 0;
  }

  methodsCalled(): FsMethod[] {
    return this.calls.map((call) => call.method);
  }

  private call(method: FsMethod, args: unknown[]): Promise<unknown> {
    this.calls.push({ method, args: asCalled(args) });
    const plan = this.plan;
    if (plan && (!plan.methods || plan.methods.includes(method))) {
      this.matching += 1;
      const hit = plan.persistent ? this.matching >= plan.failAt : this.matching === plan.failAt;
      if (hit) {
        this.injected += 1;
        const error = errnoError(plan.code, method);
        // Like Linux, a failed close() still releases the descriptor (and any flock on it).
        if (method === 'close') return this.inner.close(args[0] as number).then(() => Promise.reject(error));
        return Promise.reject(error);
      }
    }
    const fn = this.inner[method] as (...a: unknown[]) => Promise<unknown>;
    return fn.apply(this.inner, args);
  }
}
