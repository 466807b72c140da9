// Worker: reads the main file directly (no library, no lock) until stdin closes; counts reads that
// were not a complete, valid generation. Prints "ready" once it has started, then one JSON summary.
import { readFileSync } from 'node:fs';
import { validateState } from '../../dist/index.js';

const [path] = process.argv.slice(2);
let reads = 0;
let bad = 0;
let missing = 0;
let stop = false;
process.stdin.on('end', () => {
  stop = true;
});
process.stdin.resume();
console.log('ready');
while (!stop) {
  try {
    const state = JSON.parse(readFileSync(path, 'utf8'));
    reads += 1;
    if (validateState(state).length > 0) bad += 1;
  } catch (error) {
    if (error.code === 'ENOENT') missing += 1;
    else bad += 1;
  }
  await new Promise((resolve) => setImmediate(resolve));
}
console.log(JSON.stringify({ reads, bad, missing }));
