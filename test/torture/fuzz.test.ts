import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { validateState } from '../../src/model/schema.js';
import { createEmptyState } from '../../src/model/state.js';
import type { DashboardState } from '../../src/model/types.js';
import { MetricsStore } from '../../src/store/metrics-store.js';
import { MAX_NESTING, type RecoveryReport } from '../../src/store/recovery.js';
import { makeProfile, makeSession } from '../helpers/builders.js';
import { applyStep } from './sequence.js';
import { between, prng, reportScenario, SEED, size, Violations } from './torture-mode.js';

/**
 * Corrupt-input fuzz (issue 4, part 4): the main file, the backup, or both are replaced by a
 * mutation of a real generation — truncation at every length class, byte flips, random bytes,
 * NUL-filled, valid JSON of the wrong shape, wrong types deep inside, huge strings, deeply nested
 * arrays, invalid UTF-8, trailing garbage — and a store loads the project. Load must never throw
 * or hang; it returns the newest valid generation; a corrupt main is moved aside with its exact
 * bytes, the report says why (with the field's path for a wrong type), and the next update works.
 * Seeded (TORTURE_SEED replays a run). The writes use durability 'none' in a RAM-backed folder
 * where available: fsync is not under test here, and 10,000 cases would otherwise wait for the disk.
 */

const MAX_EVENTS = 5;
const LOAD_TIMEOUT_MS = 20_000;
const MAIN = '.agent_metrics.json';
const BACKUP = '.agent_metrics.json.bak';
const REASONS =
  /^(empty file|not valid UTF-8|not valid JSON: |does not match the format: |nested deeper than )/;

type Random = () => number;

function generation(n: number): DashboardState {
  const state = createEmptyState('torture', new Date('2026-01-01T00:00:00.000Z'));
  state.agents = { coding: makeProfile(), github: makeProfile({ agent_name: 'github' }) };
  state.sessions = [
    makeSession(),
    makeSession({ session_id: 'sess-2', session_number: 2, status: 'continue' }),
  ];
  for (let i = 0; i < n; i++) applyStep(state);
  return state;
}

const bytesOf = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** Paths of every leaf of `value` (arrays and objects walked), e.g. ['events', 2, 'status']. */
function leaves(value: unknown, path: (string | number)[] = [], out: (string | number)[][] = []) {
  if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      leaves(child, [...path, Array.isArray(value) ? Number(key) : key], out);
    }
  } else {
    out.push(path);
  }
  return out;
}

function setAt(root: unknown, path: readonly (string | number)[], value: unknown): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path.at(-1) as string | number] = value;
}

/** `['events', 2, 'status']` → `events[2].status`, as the store's reasons spell paths. */
const pathText = (path: readonly (string | number)[]) =>
  path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');

interface Mutation {
  kind: string;
  bytes: Buffer;
  /** True when the mutation is invalid by construction (not just probably). */
  surelyInvalid: boolean;
  /** A path the reason must name (wrong type deep inside). */
  path?: string;
}

/** A value of the wrong type for a leaf that holds `current`. */
function wrongValue(random: Random, current: unknown): unknown {
  // (Not -1: durations may be negative, since clock skew must not quarantine a project.)
  if (typeof current === 'number') return pick(random, ['12', null, [], {}, true]);
  if (typeof current === 'string') return pick(random, [42, null, [], {}, false]);
  return pick(random, ['x', 1, {}]);
}

function mutate(random: Random, original: Buffer, state: DashboardState): Mutation {
  const kind = pick(random, [
    'truncate',
    'flip',
    'random',
    'nul',
    'wrong-shape',
    'wrong-type',
    'huge-string',
    'deep-nesting',
    'bad-utf8',
    'trailing-garbage',
  ]);
  const length = original.length;
  switch (kind) {
    case 'truncate': {
      // Length classes: empty, a byte, a few bytes, up to half, up to all but the closing brace.
      const [min, max] = pick<readonly [number, number]>(random, [
        [0, 0],
        [1, 1],
        [2, 16],
        [17, length >> 1],
        [length >> 1, length - 2],
      ] as const);
      return { kind, bytes: original.subarray(0, between(random, min, max)), surelyInvalid: true };
    }
    case 'flip': {
      const bytes = Buffer.from(original);
      for (let i = between(random, 1, 8); i > 0; i--) {
        const at = between(random, 0, length - 1);
        bytes.writeUInt8((bytes.readUInt8(at) ^ between(random, 1, 255)) & 0xff, at);
      }
      return { kind, bytes, surelyInvalid: false };
    }
    case 'random': {
      const bytes = Buffer.alloc(between(random, 1, 4096));
      for (let i = 0; i < bytes.length; i++) bytes[i] = between(random, 0, 255);
      return { kind, bytes, surelyInvalid: false };
    }
    case 'nul': {
      // All zeros, or a valid prefix then zeros: what a crash leaves on some file systems.
      const bytes = Buffer.alloc(length);
      if (random() < 0.5) original.copy(bytes, 0, 0, between(random, 0, length - 2));
      return { kind, bytes, surelyInvalid: true };
    }
    case 'wrong-shape': {
      const withoutKey = { ...state } as Record<string, unknown>;
      delete withoutKey[pick(random, Object.keys(state))];
      const value = pick(random, [[], null, 42, 'state', {}, true, [state], { state }, withoutKey]);
      return { kind, bytes: bytesOf(value), surelyInvalid: true };
    }
    case 'wrong-type': {
      const copy = structuredClone(state);
      const path = pick(random, leaves(copy));
      const current = path.reduce<unknown>(
        (node, key) => (node as Record<string | number, unknown>)[key],
        copy,
      );
      setAt(copy, path, wrongValue(random, current));
      return { kind, bytes: bytesOf(copy), surelyInvalid: true, path: pathText(path) };
    }
    case 'huge-string': {
      // Valid where a string is expected (it must load, and quickly), invalid where a number is.
      const copy = structuredClone(state);
      const path = pick(random, leaves(copy));
      setAt(copy, path, 'x'.repeat(between(random, 64 << 10, 2 << 20)));
      return { kind, bytes: bytesOf(copy), surelyInvalid: false };
    }
    case 'deep-nesting': {
      const depth = between(random, MAX_NESTING + 1, 100_000);
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const text = original.toString('utf8');
      const where = pick(random, ['whole', 'events', 'extra-key']);
      // As a whole file or in place of `events` the schema rejects it; as an extra root key it
      // is allowed by the format, but such a state could never be written back.
      if (where === 'whole') return { kind, bytes: Buffer.from(deep), surelyInvalid: true };
      if (where === 'events') {
        return {
          kind,
          bytes: Buffer.from(text.replace('"events": [', `"events": [${deep},`)),
          surelyInvalid: true,
        };
      }
      return { kind, bytes: Buffer.from(text.replace('{', `{"nested": ${deep},`)), surelyInvalid: false };
    }
    case 'bad-utf8': {
      const at = original.indexOf('"torture"') + 2;
      return {
        kind,
        bytes: Buffer.concat([original.subarray(0, at), Buffer.from([0xc3, 0x28]), original.subarray(at)]),
        surelyInvalid: true,
      };
    }
    default: {
      // Trailing garbage, e.g. the tail of an older, longer generation (whitespace alone is valid).
      const olderTail = original.subarray(between(random, 1, length - 1)).toString();
      const tail = pick(random, ['x', '}', '\0\0\0', olderTail.trim() === '' ? ']' : olderTail]);
      return { kind, bytes: Buffer.concat([original, Buffer.from(tail)]), surelyInvalid: true };
    }
  }
}

/** Independent of the store: would a reader accept these bytes as a state that can be written back? */
function acceptable(bytes: Buffer): DashboardState | undefined {
  try {
    const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    if (validateState(value).length > 0) return undefined;
    JSON.stringify(value); // throws when nested too deep to be written back at all
    // Deeper than the store's limit is rejected by design (see MAX_NESTING).
    if (depthOf(value) > MAX_NESTING) return undefined;
    return value as DashboardState;
  } catch {
    return undefined;
  }
}

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Figures {
  cases: number;
  restored: number;
  fresh: number;
  loadedAsIs: number;
  kinds: Map<string, number>;
  thrown: number;
  hangs: number;
}

async function fuzzCase(
  root: string,
  index: number,
  random: Random,
  figures: Figures,
  violations: Violations,
): Promise<void> {
  const main = generation(7);
  const backup = generation(6);
  const target = pick(random, ['main', 'backup', 'both'] as const);
  const mainMutation = target === 'backup' ? undefined : mutate(random, bytesOf(main), main);
  const backupMutation = target === 'main' ? undefined : mutate(random, bytesOf(backup), backup);
  const mainBytes = mainMutation?.bytes ?? bytesOf(main);
  const backupBytes = backupMutation?.bytes ?? bytesOf(backup);
  for (const mutation of [mainMutation, backupMutation]) {
    if (mutation) figures.kinds.set(mutation.kind, (figures.kinds.get(mutation.kind) ?? 0) + 1);
  }
  const context = `case ${index} (${target}: ${mainMutation?.kind ?? '-'}/${backupMutation?.kind ?? '-'}, seed ${SEED})`;

  const dir = join(root, `case-${index}`);
  mkdirSync(dir);
  writeFileSync(join(dir, MAIN), mainBytes);
  writeFileSync(join(dir, BACKUP), backupBytes);
  const reports: RecoveryReport[] = [];
  const store = new MetricsStore({
    projectName: 'torture',
    dir,
    maxEvents: MAX_EVENTS,
    durability: 'none',
    onRecover: (report) => reports.push(report),
  });
  try {
    const loaded = await withTimeout(store.load(), LOAD_TIMEOUT_MS);
    const mainState = acceptable(mainBytes);
    const backupState = acceptable(backupBytes);
    for (const [mutation, state] of [
      [mainMutation, mainState],
      [backupMutation, backupState],
    ] as const) {
      violations.check(
        !(mutation?.surelyInvalid && state),
        () => `${context}: the oracle accepts ${mutation?.kind}`,
      );
    }
    const report = reports[0];
    if (mainState) {
      figures.loadedAsIs += 1;
      violations.check(
        reports.length === 0,
        () => `${context}: recovered a valid main file: ${reports[0]?.reason}`,
      );
      violations.check(
        JSON.stringify(loaded) === JSON.stringify(mainState),
        () => `${context}: loaded something else than the valid main file`,
      );
    } else if (!report) {
      violations.add(`${context}: corrupt main file loaded without a report`);
    } else {
      violations.check(
        REASONS.test(report.reason),
        () => `${context}: reason does not say why: ${report.reason}`,
      );
      if (mainMutation?.path) {
        const path = mainMutation.path;
        violations.check(
          report.reason.includes(path),
          () => `${context}: reason misses ${path}: ${report.reason}`,
        );
      }
      const kept = report.quarantinedPath ? readFileSync(report.quarantinedPath) : undefined;
      violations.check(
        kept?.equals(mainBytes) === true,
        () => `${context}: corrupt main not kept byte for byte`,
      );
      if (backupState) {
        figures.restored += 1;
        violations.check(report.action === 'restored-from-backup', () => `${context}: ${report.action}`);
        violations.check(
          loaded.total_sessions === backupState.total_sessions,
          () => `${context}: not the backup`,
        );
        violations.check(
          readFileSync(join(dir, MAIN)).equals(backupBytes),
          () => `${context}: main not restored`,
        );
      } else {
        figures.fresh += 1;
        violations.check(report.action === 'started-fresh', () => `${context}: ${report.action}`);
        violations.check(
          loaded.total_sessions === 0 && loaded.events.length === 0,
          () => `${context}: not fresh`,
        );
        violations.check(REASONS.test(report.backupReason ?? ''), () => `${context}: ${report.backupReason}`);
        const keptBackup = report.quarantinedBackupPath
          ? readFileSync(report.quarantinedBackupPath)
          : undefined;
        violations.check(
          keptBackup?.equals(backupBytes) === true,
          () => `${context}: corrupt backup not kept`,
        );
      }
    }
    // A corrupt file never blocks the next write, and afterwards both generations are valid.
    const saved = await withTimeout(store.update(applyStep), LOAD_TIMEOUT_MS);
    violations.check(
      saved.total_sessions === loaded.total_sessions + 1,
      () => `${context}: update lost count`,
    );
    // (After a fresh start there is no previous generation, so no backup either.)
    const backupAfter = existsSync(join(dir, BACKUP)) ? readFileSync(join(dir, BACKUP)) : undefined;
    violations.check(
      backupAfter === undefined ? !backupState && !mainState : acceptable(backupAfter) !== undefined,
      () => `${context}: no valid backup after a write`,
    );
  } catch (error) {
    const message = (error as Error).message;
    if (message.startsWith('no answer')) figures.hangs += 1;
    else figures.thrown += 1;
    violations.add(`${context}: ${message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('torture: corrupt-input fuzz', () => {
  it(
    'loads the newest valid generation from any corruption of main, backup or both',
    async () => {
      // A RAM-backed folder where there is one: the cases are metadata-heavy and fsync is not tested here.
      const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'torture-fuzz-'));
      onTestFinished(() => rmSync(root, { recursive: true, force: true }));
      const random = prng(SEED);
      const figures: Figures = {
        cases: 0,
        restored: 0,
        fresh: 0,
        loadedAsIs: 0,
        kinds: new Map(),
        thrown: 0,
        hangs: 0,
      };
      const violations = new Violations();
      const cases = size(300, 10_000);
      for (let index = 0; index < cases; index++) {
        await fuzzCase(root, index, random, figures, violations);
        figures.cases += 1;
      }
      reportScenario('fuzz', {
        cases: figures.cases,
        mutations: [...figures.kinds.values()].reduce((a, b) => a + b, 0),
        kinds: figures.kinds.size,
        restored_from_backup: figures.restored,
        started_fresh: figures.fresh,
        valid_loaded_as_is: figures.loadedAsIs,
        exceptions: figures.thrown,
        hangs: figures.hangs,
        violations: violations.list.length,
        seed: SEED,
      });
      expect(violations.first).toEqual([]);
    },
    size(120_000, 1_800_000),
  );
});
