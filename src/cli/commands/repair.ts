import {
  BACKUP_FILE,
  METRICS_FILE,
  nodeFileSystem,
  quarantine,
  type RecoveryReport,
  type ValidationIssue,
} from '../../index.js';
import { type Context, describeRecovery, openStore, projectDir, type StoreFlags } from '../context.js';
import { EXIT } from '../errors.js';
import { checkFile, type FileCheck, listProjectFiles } from '../files.js';

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
    | 'recovered';
  detail: string;
}

function describeFile(check: FileCheck, name: string): string {
  if (check.kind === 'missing') return `the ${name} is missing`;
  const issue = check.kind === 'corrupt' ? check.issues[0] : undefined;
  return `the ${name} is corrupt (${issue?.path}: ${issue?.message})`;
}

/** What `repair` would do, decided from a read-only look at the files (as `load()` decides). */
function plan(main: FileCheck, backup: FileCheck, tempFiles: readonly string[]): Step[] {
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
    steps.push({
      action: 'restore-from-backup',
      detail: `${describeFile(main, 'main file')}: restore it from the backup (${backup.state.events.length} events, ${backup.state.sessions.length} sessions)${keep}`,
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

export async function runRepair(context: Context, flags: RepairFlags): Promise<number> {
  const dir = projectDir(context, flags);
  const before = await listProjectFiles(dir);
  const main = await checkFile(before.mainPath);
  const backup = await checkFile(before.backupPath);
  const steps = plan(main, backup, before.temp);
  const notRepaired = main.kind === 'valid' ? main.issues : [];

  if (flags.dryRun) {
    report(context, flags, { dryRun: true, dir, steps, notRepaired });
    return steps.length > 0 ? EXIT.problems : EXIT.ok;
  }

  const done: Step[] = [];
  const reports: RecoveryReport[] = [];
  const store = openStore(context, flags, (recovery) => reports.push(recovery));
  if (main.kind !== 'valid' && !(main.kind === 'missing' && backup.kind === 'missing')) {
    await store.load(); // recovers under the lock, and tells onRecover what it did
    for (const recovery of reports) done.push({ action: 'recovered', detail: describeRecovery(recovery) });
  }
  const backupNow = await checkFile(before.backupPath);
  // After starting fresh there is no main file yet: write the empty state, so `verify` passes.
  const startedFresh = reports.some((recovery) => recovery.action === 'started-fresh');
  if (backupNow.kind === 'corrupt' || before.temp.length > 0 || startedFresh) {
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
    const left = (await listProjectFiles(dir)).temp.filter((path) => before.temp.includes(path));
    const removed = before.temp.length - left.length;
    if (startedFresh) done.push({ action: 'recovered', detail: 'wrote an empty state as the new main file' });
    if (removed > 0)
      done.push({
        action: 'remove-temp-files',
        detail: `removed ${removed} temp file(s) left by writers that crashed`,
      });
  }
  report(context, flags, { dryRun: false, dir, steps: done, notRepaired });
  return EXIT.ok;
}

interface RepairResult {
  dryRun: boolean;
  dir: string;
  steps: Step[];
  /** Broken invariants of a main file the store can read: recovery does not change data. */
  notRepaired: ValidationIssue[];
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
    if (result.dryRun) out.line(out.colors.dim(`run 'agent-metrics repair --dir ${flags.dir}' to do it`));
  }
  if (result.notRepaired.length > 0) {
    out.line(
      `note: the main file has ${result.notRepaired.length} consistency problem(s) that repair does not change ` +
        `(it never rewrites data); see 'agent-metrics verify --dir ${flags.dir}'`,
    );
  }
}
