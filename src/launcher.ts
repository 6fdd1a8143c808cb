#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The standalone launcher: `node dist/launcher.js [options]` is `cw-task-runner start [options]`
 * (the same flags, config file and environment).
 */
import { runEntry } from './cli/entry.js';

runEntry(['start', ...process.argv.slice(2)]);
