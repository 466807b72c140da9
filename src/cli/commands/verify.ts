import {
  capsFor,
  checkInvariants,
  checkJournal,
  type JournalCheck,
  nodeFileSystem,
  type ValidationIssue,
  validateState,
  withJournal,
} from '../../index.js';
import { type Context, existingProjectDir, type StoreFlags } from '../context.js';
import { EXIT } from '../errors.js';
import { checkFile, describeJournal, type FileCheck, listProjectFiles } from '../files.js';
import { shellWord } from '../format/shell.js';

export interface VerifyFlags extends StoreFlags {
  /** Caps to check against; by default each file's own (`retention`, else the defaults). */
  maxEvents?: number;
  maxSessions?: number;
  json?: boolean;
}

interface FileReport {
  file: 'main' | 'backup';
  path: string;
  status: FileCheck['kind'];
  issues: ValidationIssue[];
  /** Main file only: journal lines applied before checking, as a load applies them (0: none). */
  journalChanges?: number;
}

interface JournalReport extends Omit<JournalCheck, 'patches'> {
  file: 'journal';
  path: string;
  issues: ValidationIssue[];
  /** Worth knowing, not problems (a torn tail, a journal that cannot be checked). */
  notes: string[];
}

function report(file: FileReport['file'], path: string, check: FileCheck): FileReport {
  return { file, path, status: check.kind, issues: check.kind === 'missing' ? [] : check.issues };
}

function journalReport(path: string, check: JournalCheck): JournalReport {
  const { patches: _patches, ...rest } = check;
  return { file: 'journal', path, ...rest, ...describeJournal(check) };
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/**
 * Checks the main file, its backup and the journal, read-only. A missing main file is a problem
 * (nothing to verify, or a project that needs `repair`); a missing backup is normal before the
 * second write. The main file is checked as a load sees it: with the journal's changes applied.
 */
export async function runVerify(context: Context, flags: VerifyFlags): Promise<number> {
  const files = await listProjectFiles(await existingProjectDir(context, flags));
  const caps = { maxEvents: flags.maxEvents, maxSessions: flags.maxSessions };
  const mainCheck = await checkFile(files.mainPath, caps);
  const main = report('main', files.mainPath, mainCheck);
  const backup = report('backup', files.backupPath, await checkFile(files.backupPath, caps));
  if (main.status === 'missing') main.issues.push({ path: '(file)', message: 'missing' });
  const snapshot = mainCheck.kind === 'valid' ? mainCheck.state : undefined;
  const journalCheck = await checkJournal(nodeFileSystem, files.journalPath, snapshot);
  const journal = journalReport(files.journalPath, journalCheck);
  if (snapshot && journalCheck.patches.length > 0) {
    const state = withJournal(snapshot, journalCheck.patches);
    const schema = validateState(state);
    // The invariants assume a state that matches the schema.
    main.issues = schema.length > 0 ? schema : checkInvariants(state, capsFor(state, caps));
    main.journalChanges = journalCheck.patches.length;
  }
  const ok = main.issues.length === 0 && backup.issues.length === 0 && journal.issues.length === 0;

  const { out } = context;
  if (flags.json) {
    out.json({ ok, dir: files.dir, files: [main, backup], journal });
  } else {
    const { green, red, dim } = out.colors;
    const problems = (count: number) => red(plural(count, 'problem'));
    for (const file of [main, backup]) {
      let verdict =
        file.issues.length > 0
          ? problems(file.issues.length)
          : file.status === 'missing'
            ? dim('missing (normal before the second write)')
            : green('ok');
      if (file.journalChanges) {
        verdict += dim(` (checked with the journal's ${plural(file.journalChanges, 'change line')})`);
      }
      out.line(`${file.file.padEnd(7)}  ${file.path}  ${verdict}`);
      for (const issue of file.issues) out.line(`  ${file.file}: ${issue.path}: ${issue.message}`);
    }
    const pending =
      journal.changes > 0 && journal.status !== 'does-not-continue'
        ? `: ${plural(journal.changes, 'change line')} not yet folded into the main file`
        : '';
    const journalVerdict =
      journal.issues.length > 0
        ? problems(journal.issues.length)
        : journal.status === 'missing'
          ? dim('missing')
          : journal.status === 'not-checked'
            ? dim('not checked')
            : `${green('ok')}${pending}`;
    out.line(`${'journal'.padEnd(7)}  ${journal.path}  ${journalVerdict}`);
    for (const issue of journal.issues) out.line(`  journal: ${issue.path}: ${issue.message}`);
    for (const note of journal.notes) out.line(dim(`  note: journal: ${note}`));
    if (!ok && (main.status !== 'valid' || backup.status === 'corrupt' || journal.issues.length > 0)) {
      out.line(
        dim(`to see what repair would do: agent-metrics repair --dry-run --dir ${shellWord(flags.dir)}`),
      );
    }
  }
  return ok ? EXIT.ok : EXIT.problems;
}
