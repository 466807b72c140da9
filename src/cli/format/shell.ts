/**
 * `value` as one word of a POSIX shell command line, for the commands the CLI suggests (`next:
 * agent-metrics show --dir 'my project'`), so that pasting one works whatever the folder's name.
 * Hand-written: three lines, where a library (shell-quote) would add a dependency to the start-up
 * of every command.
 */
export function shellWord(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
