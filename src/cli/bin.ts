#!/usr/bin/env -S node --max-semi-space-size=4
/** The `cw-task-runner` command. */
import { runEntry } from './entry.js';

runEntry(process.argv.slice(2));
