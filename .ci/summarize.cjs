// CI summary: reads the vitest JSON reports named on the command line and prints the skipped
// tests, then every failed test (its file, name and the first lines of its message), the reports
// that are missing (a run that crashed before writing one counts as one failure) and the failed
// steps that are not vitest runs (STEPS_FAILED lists their names, comma-separated). The last line
// is always `N passed, N failed`; the exit code is 1 when anything failed.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const steps = (process.env.STEPS_FAILED ?? '').split(',').filter(Boolean);
let passed = 0;
let failed = steps.length;
const lines = [];
const skipped = [];

for (const file of process.argv.slice(2)) {
  let report;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    failed += 1;
    lines.push(`MISSING REPORT ${file}: ${error.code ?? error.message} (the run ended before writing it)`);
    continue;
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  for (const suite of report.testResults ?? []) {
    const where = path.relative(process.cwd(), suite.name ?? '?');
    const tests = suite.assertionResults ?? [];
    const failedTests = tests.filter((test) => test.status === 'failed');
    for (const test of failedTests) {
      lines.push(`FAILED [${path.basename(file)}] ${where} > ${test.fullName ?? test.title}`);
      for (const message of test.failureMessages ?? []) {
        for (const line of String(message).split('\n').slice(0, 12)) lines.push(`    ${line}`);
      }
    }
    // Skipped tests are named too: a skip that depends on the machine (the Node version, who may
    // reach the checkout, a browser) is how two machines' counts come to differ.
    for (const test of tests.filter((t) => t.status === 'skipped' || t.status === 'pending' || t.status === 'todo')) {
      skipped.push(`SKIPPED [${path.basename(file)}] ${where} > ${test.fullName ?? test.title}`);
    }
    // A file that failed outside any test (an import error, a failing hook) has no failed test.
    if (suite.status === 'failed' && failedTests.length === 0) {
      lines.push(
        `FAILED FILE [${path.basename(file)}] ${where}: ${String(suite.message ?? '')
          .split('\n')
          .slice(0, 12)
          .join('\n    ')}`,
      );
    }
  }
}
for (const step of steps) lines.push(`FAILED STEP ${step}`);

if (skipped.length > 0) {
  console.log(`== skipped (${skipped.length})`);
  for (const line of skipped) console.log(line);
}
if (lines.length > 0) {
  console.log('== what failed');
  for (const line of lines) console.log(line);
}
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0) process.exitCode = 1;
