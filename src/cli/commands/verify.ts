import type { ValidationIssue } from '../../index.js';
import { type Context, projectDir, type StoreFlags } from '../context.js';
import { EXIT } from '../errors.js';
import { checkFile, type FileCheck, listProjectFiles } from '../files.js';

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
}

function report(file: FileReport['file'], path: string, check: FileCheck): FileReport {
  return { file, path, status: check.kind, issues: check.kind === 'missing' ? [] : check.issues };
}

/**
 * Checks the main file and its backup, read-only. A missing main file is a problem (nothing to
 * verify, or a project that needs `repair`); a missing backup is normal before the second write.
 */
export async function runVerify(context: Context, flags: VerifyFlags): Promise<number> {
  const files = await listProjectFiles(projectDir(context, flags));
  const caps = { maxEvents: flags.maxEvents, maxSessions: flags.maxSessions };
  const main = report('main', files.mainPath, await checkFile(files.mainPath, caps));
  const backup = report('backup', files.backupPath, await checkFile(files.backupPath, caps));
  if (main.status === 'missing') main.issues.push({ path: '(file)', message: 'missing' });
  const ok = main.issues.length === 0 && backup.issues.length === 0;

  const { out } = context;
  if (flags.json) {
    out.json({ ok, dir: files.dir, files: [main, backup] });
  } else {
    const { green, red, dim } = out.colors;
    for (const file of [main, backup]) {
      const verdict =
        file.issues.length > 0
          ? red(`${file.issues.length} problem${file.issues.length === 1 ? '' : 's'}`)
          : file.status === 'missing'
            ? dim('missing (normal before the second write)')
            : green('ok');
      out.line(`${file.file.padEnd(6)}  ${file.path}  ${verdict}`);
      for (const issue of file.issues) out.line(`  ${file.file}: ${issue.path}: ${issue.message}`);
    }
    if (!ok && (main.status !== 'valid' || backup.status === 'corrupt')) {
      out.line(dim(`run 'agent-metrics repair --dry-run --dir ${flags.dir}' to see what repair would do`));
    }
  }
  return ok ? EXIT.ok : EXIT.problems;
}
