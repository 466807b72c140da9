import type { EventStatus } from '../model/types.js';

/**
 * Handed to the callback of `AgentMetrics.trackAgent`: what the agent reports while it works.
 * Values are checked when the event is recorded, after the callback settles.
 */
export class AgentTracker {
  inputTokens = 0;
  outputTokens = 0;
  readonly artifacts: string[] = [];
  status: EventStatus | undefined;
  errorMessage = '';

  /** Adds to the call's token counts (call it once per model turn, or once with the totals). */
  addTokens(inputTokens: number, outputTokens = 0): void {
    this.inputTokens += inputTokens;
    this.outputTokens += outputTokens;
  }

  /** Records artifacts such as `commit:abc123` or `pr:#42` (see `ARTIFACT_RULES`). */
  addArtifact(...artifacts: string[]): void {
    this.artifacts.push(...artifacts);
  }

  /**
   * Overrides the status the event gets: by default `success` when the callback returns and
   * `error` when it throws. E.g. `setStatus('blocked', 'waiting for review')` without throwing.
   */
  setStatus(status: EventStatus, errorMessage = ''): void {
    this.status = status;
    this.errorMessage = errorMessage;
  }
}
