import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BACKUP_FILE,
  checkJournal,
  createEmptyState,
  JOURNAL_BACKUP_FILE,
  JOURNAL_FILE,
  type JournalCheck,
  METRICS_FILE,
  nodeFileSystem,
  quarantine,
  type RecoveryReport,
  type ValidationIssue,
} from '../../index.js';
import {
  type Context,
  describeRecovery,
  existingProjectDir,
  openStore,
  type StoreFlags,
} from '../context.js';
import { EXIT } from '../errors.js';
import { changeLines, checkFile, type FileCheck, foreignJournalHolds, listProjectFiles } from '../files.js';
import { shellWord } from '../format/shell.js';

export interface RepairFlags extends StoreFlags {
  dryRun?: boolean;
  json?: boolean;
}

/** One step of a repair, in words, with a machine-readable `action`. */
interface Step {
  action:
    | 'restore-from-backup'
    | 'start-fresh'
    | 'replace-corrupt-backup'
    | 'remove-temp-files'
    | 'fold-journal'
    | 'cut-journal-tail'
    | 'leave-out-journal-tail'
    | 'skip-damaged-journal-lines'
    | 'set-aside-journal'
    | 'recovered';
  detail: string;
}

function describeFile(check: FileCheck, name: string): string {
  if (check.kind === 'missing') return `the ${name} is missing`;
  const issue = check.kind === 'corrupt' ? check.issues[0] : undefined;
  return `the ${name} is corrupt (${issue?.path}: ${issue?.message})`;
}

/**
 * What `repair` would do, decided from a read-only look at the files (as `load()` decides).
 * `journalBackupExists`: a restored backup is then brought forward with the changes made since it
 * (kept in `.agent_metrics.journal.bak` and the journal), where they continue it.
 */
function plan(
  main: FileCheck,
  backup: FileCheck,
  tempFiles: readonly string[],
  journalBackupExists: boolean,
): Step[] {
  const steps: Step[] = [];
  if (main.kind === 'valid') {
    if (backup.kind === 'corrupt') {
      steps.push({
        action: 'replace-corrupt-backup',
        detail: `${describeFile(backup, 'backup')}: keep it as ${BACKUP_FILE}.corrupt-<time> and make the current main file the backup`,
      });
    }
  } else if (backup.kind === 'valid') {
    const keep =
      main.kind === 'corrupt' ? `, keeping the corrupt file as ${METRICS_FILE}.corrupt-<time>` : '';
    const since = journalBackupExists
      ? `, then the changes made since, from ${JOURNAL_BACKUP_FILE} and the journal, where they continue it`
      : '';
    steps.push({
      action: 'restore-from-backup',
      detail: `${describeFile(main, 'main file')}: restore it from the backup (${backup.state.events.length} events, ${backup.state.sessions.length} sessions${since})${keep}`,
    });
  } else if (main.kind === 'corrupt' || backup.kind === 'corrupt') {
    steps.push({
      action: 'start-fresh',
      detail: `${describeFile(main, 'main file')} and ${describeFile(backup, 'backup')}: start from an empty state, keeping corrupt files as .corrupt-<time>`,
    });
  }
  if (tempFiles.length > 0) {
    steps.push({
      action: 'remove-temp-files',
      detail: `remove ${tempFiles.length} temp file(s) left by writers that crashed`,
    });
  }
  return steps;
}

/** Steps routine upkeep rather than repairs: `--dry-run` does not count them as problems. */
const ROUTINE: ReadonlySet<Step['action']> = new Set([
  'fold-journal',
  'cut-journal-tail',
  'leave-out-journal-tail',
]);

/** What folding the journal would do, from a read-only check against a sound main file. */
function planJournal(check: JournalCheck): Step[] {
  const aside = `set it aside as ${JOURNAL_FILE}.corrupt-<time>`;
  const fold: Step[] =
    check.changes > 0
      ? [
          {
            action: 'fold-journal',
            detail: `fold the journal's ${changeLines(check.changes)} into the main file`,
          },
        ]
      : [];
  // A torn end with complete lines: never cut in place (they may be acknowledged lines, damaged).
  const leaveOutTail: Step[] =
    check.tornLines > 0
      ? [
          {
            action: 'leave-out-journal-tail',
            detail: `leave out the ${check.tornBytes} bytes at the journal's end, ${check.tornLines} complete line(s) among them, keeping a copy of the journal as ${JOURNAL_FILE}.corrupt-<time>`,
          },
        ]
      : [];
  switch (check.status) {
    case 'missing':
      return [];
    case 'not-checked':
      return [
        {
          action: 'fold-journal',
          detail: `check the journal against the main file once that is sound, then fold it into it (or ${aside} if it does not continue it)`,
        },
      ];
    case 'header-unreadable':
      return [
        {
          action: 'set-aside-journal',
          detail: `the journal's header is unreadable (${check.reason}): ${aside}`,
        },
      ];
    case 'does-not-continue': {
      const holds = foreignJournalHolds(check);
      if (holds === undefined) return [];
      return [
        {
          action: 'set-aside-journal',
          detail: `the journal does not continue the main file: ${aside}, ${holds} not applied`,
        },
      ];
    }
    case 'torn-tail': {
      const cut: Step = {
        action: 'cut-journal-tail',
        detail: `cut off the ${check.tornBytes} bytes of an interrupted write at the journal's end`,
      };
      return [...(leaveOutTail.length > 0 ? leaveOutTail : [cut]), ...fold];
    }
    case 'damaged': {
      const damaged = check.damaged as NonNullable<JournalCheck['damaged']>;
      return [
        {
          action: 'skip-damaged-journal-lines',
          detail: `skip ${damaged.count} damaged journal line(s) (first at byte ${damaged.firstOffset}: ${damaged.reason}), keeping a copy of the journal as ${JOURNAL_FILE}.corrupt-<time>`,
        },
        ...leaveOutTail,
        ...fold,
      ];
    }
    case 'ok':
      return fold;
  }
}

/** The main file as it is now, when sound: what the journal must continue. */
async function soundState(path: string) {
  const check = await checkFile(path);
  return check.kind === 'valid' ? check.state : undefined;
}

export async function runRepair(context: Context, flags: RepairFlags): Promise<number> {
  const dir = await existingProjectDir(context, flags);
  const before = await listProjectFiles(dir);
  const main = await checkFile(before.mainPath);
  const backup = await checkFile(before.backupPath);
  const notRepaired = main.kind === 'valid' ? main.issues : [];

  if (flags.dryRun) {
    // No main file and no backup: the store starts from an empty state, which no journal
    // continues (its lines are set aside with it), so the journal is checked against that.
    const startsEmpty = main.kind === 'missing' && backup.kind === 'missing';
    const journal = await checkJournal(
      nodeFileSystem,
      before.journalPath,
      main.kind === 'valid' ? main.state : startsEmpty ? createEmptyState('project') : undefined,
    );
    const journalBackupExists = await stat(join(dir, JOURNAL_BACKUP_FILE)).then(
      () => true,
      () => false,
    );
    const steps = [...plan(main, backup, before.temp, journalBackupExists), ...planJournal(journal)];
    report(context, flags, { dryRun: true, dir, steps, notRepaired, journal: withoutPatches(journal) });
    return steps.some((step) => !ROUTINE.has(step.action)) ? EXIT.problems : EXIT.ok;
  }

  const done: Step[] = [];
  const reports: RecoveryReport[] = [];
  let described = 0;
  // What the store told onRecover since last time, as steps.
  const takeReports = () => {
    for (const recovery of reports.slice(described))
      done.push({ action: 'recovered', detail: describeRecovery(recovery) });
    described = reports.length;
  };
  const store = openStore(context, flags, (recovery) => reports.push(recovery));
  if (main.kind !== 'valid' && !(main.kind === 'missing' && backup.kind === 'missing')) {
    await store.load(); // recovers under the lock, and tells onRecover what it did
    takeReports();
  }
  // Checked before any write of ours, which would add a line of its own.
  const journal = await checkJournal(nodeFileSystem, before.journalPath, await soundState(before.mainPath));
  const backupNow = await checkFile(before.backupPath);
  // After starting fresh there is no main file yet: write the empty state, so `verify` passes.
  const startedFresh = reports.some((recovery) => recovery.action === 'started-fresh');
  const rewrite = backupNow.kind === 'corrupt' || before.temp.length > 0 || startedFresh;
  if (rewrite) {
    // Any write sweeps the temp files and makes the current main file the backup. A corrupt
    // backup is moved aside first, under the store's lock (held while the mutator runs), so
    // the evidence is kept and no other writer sees the gap.
    await store.update(async () => {
      if ((await checkFile(before.backupPath)).kind !== 'corrupt') return;
      // The store's own naming: a free `.corrupt-<UTC timestamp>[-N]`, never over older evidence.
      const aside = await quarantine(nodeFileSystem, before.backupPath);
      done.push({
        action: 'replace-corrupt-backup',
        detail: `corrupt backup kept as ${aside}; the main file is the new backup`,
      });
    });
    takeReports();
    const left = (await listProjectFiles(dir)).temp.filter((path) => before.temp.includes(path));
    const removed = before.temp.length - left.length;
    if (startedFresh) done.push({ action: 'recovered', detail: 'wrote an empty state as the new main file' });
    if (removed > 0)
      done.push({
        action: 'remove-temp-files',
        detail: `removed ${removed} temp file(s) left by writers that crashed`,
      });
  }
  const folds = journal.changes > 0 && ['ok', 'torn-tail', 'damaged'].includes(journal.status);
  if (rewrite || planJournal(journal).length > 0) {
    // The store's locked read cuts a torn tail (or keeps a copy of the journal, when the tail
    // holds complete lines), skips damaged lines (keeping a copy) and sets aside a journal that
    // does not continue the main file; the checkpoint folds the rest, so the main file alone
    // holds the whole state (for readers that know no journal).
    await store.checkpoint();
    await store.close();
    takeReports();
    if (folds) {
      done.push({
        action: 'fold-journal',
        detail: `folded the journal's ${journal.changes} change line(s) into the main file`,
      });
    }
  }
  report(context, flags, { dryRun: false, dir, steps: done, notRepaired, journal: withoutPatches(journal) });
  return EXIT.ok;
}

function withoutPatches(check: JournalCheck): Omit<JournalCheck, 'patches'> {
  const { patches: _patches, ...rest } = check;
  return rest;
}

interface RepairResult {
  dryRun: boolean;
  dir: string;
  steps: Step[];
  /** Broken invariants of a main file the store can read: recovery does not change data. */
  notRepaired: ValidationIssue[];
  /** What a read-only check of the journal found, before repair touched it. */
  journal: Omit<JournalCheck, 'patches'>;
}

function report(context: Context, flags: RepairFlags, result: RepairResult): void {
  const { out } = context;
  if (flags.json) {
    out.json(result);
    return;
  }
  if (result.steps.length === 0) {
    out.line(`nothing to repair in ${result.dir}`);
  } else {
    out.heading(result.dryRun ? `repair would, in ${result.dir}:` : `repaired ${result.dir}:`);
    for (const step of result.steps) out.line(`- ${step.detail}`);
    if (result.dryRun)
      out.line(out.colors.dim(`to do it: agent-metrics repair --dir ${shellWord(flags.dir)}`));
  }
  if (result.notRepaired.length > 0) {
    out.line(
      `note: the main file has ${result.notRepaired.length} consistency problem(s) that repair does not change ` +
        `(it never rewrites data); see agent-metrics verify --dir ${shellWord(flags.dir)}`,
    );
  }
}
