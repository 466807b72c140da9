import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * Multi-process tests spawn workers that import the built package (dist/): build it first, so a
 * direct `npx vitest run <file>` never tests a stale dist/.
 */
export default function buildOnce(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
