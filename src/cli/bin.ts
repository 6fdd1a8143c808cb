#!/usr/bin/env node
/** The `cw-task-runner` command. */
import { runEntry } from './entry.js';

runEntry(process.argv.slice(2));
