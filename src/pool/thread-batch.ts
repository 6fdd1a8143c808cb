/**
 * What crosses between the launcher and a worker thread in thread mode, besides the shared slots:
 * a batch of tries goes to a thread as one piscina task (one message and one wake-up for several
 * tries), and each try's result comes back on its own as soon as it ends, posted on the thread's
 * parent port (piscina's 'message' event) before the thread starts the next one. A message posted
 * there reaches the launcher even when the thread is ended right after (Node emits a worker's
 * messages before its exit), so ending a thread to stop one try never loses what the tries
 * before it returned.
 */
import { TaskRunnerError } from '../errors.js';
import { isRecord, previewJson } from '../shared/values.js';
import { runMessage, type AttemptJob } from './attempt.js';

/** One try of a batch: its shared slot, the ticket that lets the thread start it, its run message. */
export interface BatchEntry {
  slot: number;
  ticket: number;
  run: unknown;
}

/** What piscina is given for a batch; the thread answers with how many of its tries it ran. */
export interface ThreadBatch {
  entries: BatchEntry[];
}

/**
 * One try's result, posted on the thread's parent port. The port is the thread's, so a task could
 * post there too: what does not look like this is ignored (thread mode is for trusted tasks; one
 * could still forge another try's result, as it could write the shared slots).
 */
export interface BatchResult {
  type: 'thread result';
  slot: number;
  ticket: number;
  /** A {@link import('./thread-result.js').ThreadResult}, decoded by the launcher. */
  result: unknown;
}

/** Launcher side: a try's entry in a batch. */
export function batchEntry(slot: number, ticket: number, job: AttemptJob): BatchEntry {
  return { slot, ticket, run: runMessage(job) };
}

const isIndex = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;

/** Thread side: checks a batch; a malformed one is a launcher bug and fails the whole task. */
export function decodeThreadBatch(value: unknown): BatchEntry[] {
  if (isRecord(value) && Array.isArray(value.entries)) {
    const entries = value.entries as unknown[];
    if (entries.every((entry) => isRecord(entry) && isIndex(entry.slot) && isIndex(entry.ticket)))
      return entries as BatchEntry[];
  }
  throw new TaskRunnerError('PROTOCOL_INVALID', `invalid thread batch: ${previewJson(value, 200)}`);
}

/** Launcher side: a result message's slot and ticket, or null for anything else a thread posts. */
export function decodeBatchResult(value: unknown): BatchResult | null {
  if (!isRecord(value) || value.type !== 'thread result' || !isIndex(value.slot) || !isIndex(value.ticket)) return null;
  return value as unknown as BatchResult;
}
