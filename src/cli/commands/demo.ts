import { type Context, openMetrics, recordingProjectDir, type StoreFlags } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { checkFile, listProjectFiles } from '../files.js';
import { shellWord } from '../format/shell.js';
import { demoHistory } from './demo-history.js';

export interface DemoFlags extends StoreFlags {
  seed: number;
  force?: boolean;
}

export async function runDemo(context: Context, flags: DemoFlags): Promise<number> {
  const files = await listProjectFiles(await recordingProjectDir(context, flags));
  const existing = [(await checkFile(files.mainPath)).kind, (await checkFile(files.backupPath)).kind];
  const heldProject = existing.some((kind) => kind !== 'missing');
  if (!flags.force && heldProject) {
    throw new UsageError(
      `--dir: ${files.dir} already holds a project; pick a fresh folder, or add --force to add the demo history to it`,
    );
  }
  // A fresh folder gets throwaway sample data: atomic writes without fsync make the demo take a
  // fraction of a second. A real project (--force) keeps the store's default durability.
  const metrics = await openMetrics(context, {
    ...flags,
    project: flags.project ?? 'demo-project',
    ...(heldProject ? {} : { durability: 'none' as const }),
  });
  const history = demoHistory(flags.seed);
  let events = 0;
  for (const session of history) {
    await metrics.startSession({
      sessionId: session.sessionId,
      type: session.type,
      startedAt: session.startedAt,
    });
    for (const event of session.events) await metrics.recordEvent(event);
    events += session.events.length;
    if (session.end)
      await metrics.endSession(session.sessionId, session.end.status, { endedAt: session.end.endedAt });
  }
  const running = history.filter((session) => !session.end).length;
  context.out.line(
    `recorded ${history.length} sessions (${running} still in progress) and ${events} events of 5 agents in ${files.dir}`,
  );
  context.out.line(context.out.colors.dim(`next: agent-metrics show --dir ${shellWord(flags.dir)}`));
  return EXIT.ok;
}
