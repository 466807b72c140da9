/** Human-readable numbers for `show` (the JSON output keeps the raw values). */

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

export function formatUsd(value: number): string {
  // Agent calls cost fractions of a cent: show them, but not for totals in the dollars.
  return `$${value.toFixed(value !== 0 && Math.abs(value) < 1 ? 4 : 2)}`;
}

export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  return h > 0 ? `${h}h ${m}m ${s}s` : `${m}m ${s}s`;
}

/** `2026-02-10T10:00:18.500000Z` → `2026-02-10 10:00 UTC`; empty stays `-`. */
export function formatTime(timestamp: string): string {
  if (timestamp === '') return '-';
  const time = Date.parse(timestamp);
  if (Number.isNaN(time)) return timestamp;
  const iso = new Date(time).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}
