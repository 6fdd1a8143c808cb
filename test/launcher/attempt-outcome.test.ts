/**
 * What the launcher writes for each way a try can end (launcher/attempt-outcome.ts, the table in
 * ARCHITECTURE.md, "How a try ended"): the try's result and text and the flags the launch
 * statement's rules read. The rules themselves are tested against PostgreSQL in test/store; the
 * paths that reach these builders, end to end, in lease-fence, pid-wipe and local-queue tests.
 */
import { describe, expect, it } from 'vitest';
import {
  heldOutcome,
  plainestOutcome,
  refusedOutcome,
  reportedOutcome,
  unstartedOutcome,
  type EndedTry,
} from '../../src/launcher/attempt-outcome.js';
import type { AbortReason, AttemptReport, AttemptStart } from '../../src/pool/attempt.js';
import { abortedReport, crashedReport, failedReport, finishedReport, noUsage } from '../../src/pool/reports.js';
import type { ClaimedRow } from '../../src/store/launch-statement.js';

const row: ClaimedRow = {
  id: '7',
  taskClassName: 'Echo',
  options: null,
  optionsBytes: null,
  tries: 2,
  tryLimit: 5,
  queue: 'default',
  priority: 0,
  createdAtMs: 0,
  timeoutMs: null,
  crashes: 0,
  startNow: true,
  runnableAtMs: 0,
  traceparent: null,
  receivedAtMs: 0,
};
const start: AttemptStart = {
  pid: 4242,
  processIdentity: null,
  threadId: null,
  mode: 'fresh',
  startedAt: new Date(1_000),
  startedAtMs: 1_000,
};
const usage = { pid: 4242, threadId: null, peakMemoryBytes: 1024 };

function ended(extra: Partial<EndedTry> = {}): EndedTry {
  return { row, start, timeoutMs: 500, fenced: false, wiped: false, lost: false, ...extra };
}

const notConfirmed = 'its lease was not confirmed in time (the launcher cut off from the database, or frozen)';
const fencedText = 'lease lost: fenced by its launcher';
const ends = { endNow: true, refund: false, crash: false };
const retries = { endNow: false, refund: false, crash: false };
const crashes = { endNow: false, refund: false, crash: true };
const givesBack = { endNow: false, refund: true, crash: false };

describe('the outcome of a reported try', () => {
  it('maps each report to its result and flags', () => {
    const killed = (reason: AbortReason): AttemptReport => abortedReport(usage, reason, null, 'SIGTERM', 'killed');
    const cases = [
      [finishedReport(usage, 'ok'), 'FINISHED', 'ok', ends],
      [failedReport(usage, 'options', 'bad'), 'FAILED', 'bad', ends],
      [failedReport(usage, 'task', 'boom'), 'FAILED', 'boom', retries],
      [crashedReport(usage, 3, null, '', 'exited'), 'CRASHED', 'exited', crashes],
      [killed('timeout'), 'TIMED_OUT', 'hard timeout of 500 ms reached; killed', crashes],
      [killed('cancel'), 'CANCELLED', 'killed', ends],
      [killed('shutdown'), 'INTERRUPTED', 'interrupted by launcher shutdown: killed', givesBack],
      [killed('lease'), 'INTERRUPTED', `${fencedText}: killed`, givesBack],
    ] as const;
    for (const [report, result, resultText, flags] of cases) {
      expect(reportedOutcome(ended(), report)).toEqual({
        id: '7',
        tries: 2,
        result,
        resultText,
        ...flags,
        attempt: expect.any(Object),
      });
    }
  });

  it('records the process from the start and the report, the exit only of a stopped one', () => {
    const crashed = crashedReport(usage, null, 'SIGKILL', 'tail', 'killed');
    expect(reportedOutcome(ended(), crashed).attempt).toEqual({
      pid: 4242,
      threadId: null,
      mode: 'fresh',
      startedAtMs: 1_000,
      exitCode: null,
      signal: 'SIGKILL',
      peakMemoryBytes: 1024,
    });
    expect(reportedOutcome(ended({ start: null }), finishedReport(usage, 'ok')).attempt).toEqual({
      pid: 4242,
      threadId: null,
      mode: null,
      startedAtMs: null,
      exitCode: null,
      signal: null,
      peakMemoryBytes: 1024,
    });
  });

  it('writes a fenced try that was stopped as fenced, and one that ended by itself as it ended', () => {
    const killed = crashedReport(usage, null, 'SIGKILL', '', 'killed by SIGKILL');
    expect(reportedOutcome(ended({ fenced: true }), killed)).toMatchObject({
      result: 'INTERRUPTED',
      resultText: `${fencedText}: ${notConfirmed}; killed by SIGKILL`,
      ...givesBack,
      attempt: { signal: 'SIGKILL' },
    });
    expect(reportedOutcome(ended({ fenced: true }), finishedReport(usage, 'ok'))).toMatchObject({
      result: 'FINISHED',
      ...ends,
    });
  });

  it('writes a try stopped for a reschedule RESCHEDULED, fenced or not, unless it ended by itself first', () => {
    const stopped = abortedReport(usage, 'shutdown', null, 'SIGTERM', 'terminated');
    const text =
      'rescheduled: its pid was cleared while the try ran, so the try was stopped before the next one ' + 'could start';
    expect(reportedOutcome(ended({ wiped: true }), stopped)).toMatchObject({
      result: 'RESCHEDULED',
      resultText: `${text} (terminated)`,
      ...givesBack,
    });
    expect(reportedOutcome(ended({ wiped: true, fenced: true }), stopped)).toMatchObject({
      result: 'RESCHEDULED',
      resultText: `${text} (${notConfirmed}; terminated)`,
    });
    const failed = failedReport(usage, 'task', 'boom');
    expect(reportedOutcome(ended({ wiped: true }), failed)).toMatchObject({ result: 'FAILED', ...retries });
  });

  it("gives a lost try the fence's account, for the history row another launcher wrote", () => {
    const stopped = abortedReport(usage, 'shutdown', null, 'SIGTERM', 'terminated');
    expect(reportedOutcome(ended({ lost: true, fenced: true, wiped: true }), stopped).resultText).toBe(
      `${fencedText}: ${notConfirmed}; terminated`,
    );
    const failed = failedReport(usage, 'task', 'boom');
    expect(reportedOutcome(ended({ lost: true, fenced: true }), failed).resultText).toBe(`${fencedText}: boom`);
  });
});

describe('outcomes without a report', () => {
  const none = {
    pid: null,
    threadId: null,
    mode: null,
    startedAtMs: null,
    exitCode: null,
    signal: null,
    peakMemoryBytes: null,
  };
  const unstarted = ended({ start: null });

  it('a try stopped while it was prepared: fenced, rescheduled, or its lease lost', () => {
    const deadline = 'its lease deadline passed before the try started';
    expect(unstartedOutcome({ ...unstarted, fenced: true }, deadline)).toEqual({
      id: '7',
      tries: 2,
      result: 'INTERRUPTED',
      resultText: `${fencedText}: ${notConfirmed}; ${deadline}`,
      ...givesBack,
      attempt: none,
    });
    expect(unstartedOutcome({ ...unstarted, wiped: true }, 'stopped before it started')).toMatchObject({
      result: 'RESCHEDULED',
      ...givesBack,
      resultText: expect.stringMatching(/could start \(stopped before it started\)$/),
    });
    const lost = { ...unstarted, lost: true, fenced: true };
    expect(unstartedOutcome(lost, 'lease lost before it started').resultText).toBe(
      `${fencedText}: ${notConfirmed}; lease lost before it started`,
    );
  });

  it('a refused try: FAILED, ended now when its options cannot change', () => {
    expect(refusedOutcome(row, 'options', 'too long')).toEqual({
      id: '7',
      tries: 2,
      result: 'FAILED',
      resultText: 'too long',
      ...ends,
      attempt: none,
    });
    expect(refusedOutcome(row, 'load', 'no such file')).toMatchObject({ result: 'FAILED', ...retries });
  });

  it('a held row: cancelled ends it, released and rescheduled give the try back', () => {
    expect(heldOutcome(row, 'cancelled')).toEqual({
      id: '7',
      tries: 2,
      result: 'CANCELLED',
      resultText: 'cancelled before it started',
      ...ends,
      attempt: none,
    });
    expect(heldOutcome(row, 'released')).toMatchObject({
      result: 'INTERRUPTED',
      resultText: 'released unstarted: the launcher is shutting down',
      ...givesBack,
    });
    expect(heldOutcome(row, 'rescheduled')).toMatchObject({
      result: 'RESCHEDULED',
      resultText: 'rescheduled before it started: its pid was cleared while it was held',
      ...givesBack,
    });
  });

  it('the plainest form of a refused outcome: FAILED, saying why, keeping only the mode', () => {
    const refused = reportedOutcome(ended(), crashedReport(noUsage, 2 ** 40, null, '', 'odd'));
    expect(plainestOutcome(refused)).toEqual({
      id: '7',
      tries: 2,
      result: 'FAILED',
      resultText: 'the outcome of this try (CRASHED) could not be stored; the database refused it',
      ...retries,
      attempt: { ...none, mode: 'fresh' },
    });
  });
});
