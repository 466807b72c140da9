/**
 * Calls a user callback (onRecover, onError) so that it can never break the operation that called
 * it, nor crash the host: a synchronous throw is caught, and a returned promise that rejects (an
 * `async` callback is valid where `void` is expected) gets a handler, so it is never unhandled.
 */
export function callSafely<A>(callback: ((arg: A) => unknown) | undefined, arg: A): void {
  try {
    const result = callback?.(arg);
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, () => undefined);
    }
  } catch {
    // The callback's own failure is its own business.
  }
}
