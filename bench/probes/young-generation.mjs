// Why a recording process's V8 young generation grows to its maximum (~34 MB), apart from our
// library: a plain loop that makes ~30 KB of garbage per "event", sequentially (one await per
// event), and keeps the newest N events as objects (as the store's History does), or as JSON
// bytes in one Buffer outside V8's heap, or nothing. Each variant runs in a fresh process.
// V8 grows the young generation once the bytes that survived scavenges since its last growth
// exceed its size: kept records all survive, so keeping any in the heap grows it step by step to
// the maximum; bytes in a Buffer are not scavenged.
//   node bench/probes/young-generation.mjs [--events=20000]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const events = Number(arg('events', 20_000));
const variant = arg('variant', undefined);

if (variant === undefined) {
  const variants = ['none', 'objects:500', 'objects:50000', 'bytes:50000'];
  for (const name of variants) {
    const line = execFileSync(process.execPath, [
      fileURLToPath(import.meta.url),
      `--variant=${name}`,
      `--events=${events}`,
    ]);
    process.stdout.write(line);
  }
} else {
  const [kind, count = '0'] = variant.split(':');
  const keep = Number(count);
  const kept = [];
  const bytes = Buffer.alloc(kind === 'bytes' ? keep * 512 : 0);
  for (let seq = 0; seq < events; seq++) {
    const garbage = [];
    for (let i = 0; i < 100; i++) garbage.push({ i, text: `event-${seq}-${i}`, list: [i, i + 1, i + 2] });
    const event = {
      event_id: `evt-${seq}-${Math.random()}`,
      agent_name: 'coding',
      session_id: 'sess-1',
      model: 'claude-sonnet-4-5',
      input_tokens: seq,
      output_tokens: seq * 2,
      started_at: new Date().toISOString(),
      ended_at: new Date().toISOString(),
      status: 'success',
      artifacts: [`src/file-${seq}.ts`],
    };
    if (kind === 'objects') {
      kept.push(event);
      if (kept.length > keep) kept.shift();
    } else if (kind === 'bytes') {
      bytes.write(JSON.stringify(event), (seq % keep) * 512);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space]));
  const mb = (value) => `${(value / 1e6).toFixed(0)} MB`;
  console.log(
    `${events} events, keeping ${variant.padEnd(14)} young generation ${mb(spaces.new_space.space_size)}, ` +
      `old generation ${mb(spaces.old_space.space_size)}, peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`,
  );
}
