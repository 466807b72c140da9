import { MetricsError } from '../errors.js';

/**
 * What `encode` returns; what JSON.stringify throws becomes E_INVALID_STATE. Every backend writes
 * a state as JSON (the file store in its journal and files, the memory backend as what it keeps),
 * so a value JSON cannot hold fails the same way in each.
 */
export function asJson<T>(encode: () => T): T {
  try {
    return encode();
  } catch (error) {
    // Extra keys may hold values JSON cannot represent (BigInt, cycles).
    throw new MetricsError(
      'E_INVALID_STATE',
      `state cannot be written as JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
