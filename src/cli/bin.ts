#!/usr/bin/env node
import { stdoutFailure } from './io.js';
import { main, processIo } from './main.js';

const code = await main(process.argv.slice(2), processIo());
// A failed stdout has set its own exit code already (see `onStdoutError`).
if (stdoutFailure() === undefined) process.exitCode = code;
