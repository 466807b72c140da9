import type { AgentProfile } from './types.js';

/** The profile counters that artifacts feed. */
export type ContributionCounter =
  | 'commits_made'
  | 'prs_created'
  | 'prs_merged'
  | 'files_created'
  | 'files_modified'
  | 'lines_added'
  | 'lines_removed'
  | 'tests_written'
  | 'issues_created'
  | 'issues_completed'
  | 'messages_sent'
  | 'reviews_completed';

/** One artifact pattern and the counter it adds 1 to. */
export interface ArtifactRule {
  prefix: string;
  /** When set, the artifact must end with `:<suffix>` (e.g. `pr:#42:merged`). */
  suffix?: string;
  counter: ContributionCounter;
}

/**
 * The one table that maps artifacts to contribution counters. Rules with a suffix come first:
 * the first rule that matches wins, so `pr:#42:merged` counts as merged, not as created.
 * `lines:+A/-R` adds A to `lines_added` and R to `lines_removed` (see `parseArtifact`).
 * Any other artifact is kept in the event and counts nowhere.
 */
export const ARTIFACT_RULES: readonly ArtifactRule[] = Object.freeze([
  { prefix: 'commit', counter: 'commits_made' },
  { prefix: 'pr', suffix: 'merged', counter: 'prs_merged' },
  { prefix: 'pr', counter: 'prs_created' },
  { prefix: 'file', suffix: 'created', counter: 'files_created' },
  { prefix: 'file', counter: 'files_modified' },
  { prefix: 'issue', suffix: 'completed', counter: 'issues_completed' },
  { prefix: 'issue', counter: 'issues_created' },
  { prefix: 'message', counter: 'messages_sent' },
  { prefix: 'review', counter: 'reviews_completed' },
  { prefix: 'test', counter: 'tests_written' },
]);

export const CONTRIBUTION_COUNTERS: readonly ContributionCounter[] = Object.freeze([
  'commits_made',
  'prs_created',
  'prs_merged',
  'files_created',
  'files_modified',
  'lines_added',
  'lines_removed',
  'tests_written',
  'issues_created',
  'issues_completed',
  'messages_sent',
  'reviews_completed',
]);

/** What one artifact adds to the contribution counters. */
export type Contribution = Partial<Record<ContributionCounter, number>>;

/**
 * The one form of a `lines:` artifact: `lines:+A/-R`, up to 9 digits each (enough for any diff,
 * and the lifetime counters stay safe integers). Input validation rejects any other `lines:`
 * artifact; `parseArtifact` counts only this form.
 */
export const LINES_ARTIFACT = /^lines:\+(\d{1,9})\/-(\d{1,9})$/;

/**
 * What `artifact` adds to the counters: `{}` for an artifact that counts nowhere (unknown prefix,
 * or a `lines:` artifact not of the form `lines:+A/-R`).
 */
export function parseArtifact(artifact: string): Contribution {
  const contribution: Contribution = {};
  addArtifact(contribution, artifact);
  return contribution;
}

/** Sum of the contributions of `artifacts`. */
export function contributionsOf(artifacts: readonly string[]): Contribution {
  const total: Contribution = {};
  for (const artifact of artifacts) addArtifact(total, artifact);
  return total;
}

/** Adds the contributions of `artifacts` to `profile`'s counters, in place. */
export function addContributions(profile: AgentProfile, artifacts: readonly string[]): void {
  for (const artifact of artifacts) addArtifact(profile, artifact);
}

/**
 * Adds what `artifact` counts to `counters`, in place: the one place the rules are applied. Adds
 * straight into the target rather than building a contribution per artifact, since this runs for
 * every artifact of every recorded event.
 */
function addArtifact(counters: Contribution, artifact: string): void {
  if (artifact.startsWith('lines:')) {
    const lines = LINES_ARTIFACT.exec(artifact);
    if (!lines) return;
    counters.lines_added = (counters.lines_added ?? 0) + Number(lines[1]);
    counters.lines_removed = (counters.lines_removed ?? 0) + Number(lines[2]);
    return;
  }
  const colon = artifact.indexOf(':');
  if (colon <= 0) return;
  const prefix = artifact.slice(0, colon);
  for (const rule of ARTIFACT_RULES) {
    if (rule.prefix !== prefix) continue;
    if (rule.suffix !== undefined && !artifact.endsWith(`:${rule.suffix}`)) continue;
    counters[rule.counter] = (counters[rule.counter] ?? 0) + 1;
    return;
  }
}
