import { describe, expect, it } from 'vitest';
import { addContributions, contributionsOf, parseArtifact } from '../../src/model/artifacts.js';
import { createProfile } from '../../src/model/record-event.js';

describe('artifacts', () => {
  it.each([
    ['commit:abc123', { commits_made: 1 }],
    ['pr:#42', { prs_created: 1 }],
    ['pr:#42:merged', { prs_merged: 1 }],
    ['file:src/app.ts', { files_modified: 1 }],
    ['file:src/app.ts:created', { files_created: 1 }],
    ['issue:AI-12', { issues_created: 1 }],
    ['issue:AI-12:completed', { issues_completed: 1 }],
    ['message:#dev', { messages_sent: 1 }],
    ['review:pr#41', { reviews_completed: 1 }],
    ['test:app.test.ts', { tests_written: 1 }],
    ['lines:+120/-8', { lines_added: 120, lines_removed: 8 }],
    ['url:https://x', {}],
    ['lines:lots', {}],
    // Counted only in the one form input validation accepts (up to 9 digits each).
    ['lines:+999999999/-0', { lines_added: 999999999, lines_removed: 0 }],
    ['lines:+1234567890/-0', {}],
    ['lines:+1/-1234567890', {}],
    [':commit', {}],
    ['commit', {}],
  ])('%s counts as %o', (artifact, expected) => {
    expect(parseArtifact(artifact)).toEqual(expected);
  });

  it('sums several artifacts and adds them to a profile', () => {
    const artifacts = ['commit:a', 'commit:b', 'lines:+3/-1', 'lines:+2/-0', 'unknown:x'];
    expect(contributionsOf(artifacts)).toEqual({ commits_made: 2, lines_added: 5, lines_removed: 1 });
    const profile = createProfile('coding');
    profile.commits_made = 7;
    addContributions(profile, artifacts);
    expect([profile.commits_made, profile.lines_added, profile.lines_removed, profile.prs_created]).toEqual([
      9, 5, 1, 0,
    ]);
  });
});
