/**
 * Entry of a forked child. It reports `ready`, runs the one task it is sent, reports, and exits.
 * It ends itself when the launcher's IPC channel closes, so a child whose launcher died does not
 * run on unsupervised.
 */
import { describeError } from '../../errors.js';
import { decodeParentMessage, type ChildMessage } from '../protocol.js';
import { capText, runTask } from './run-task.js';

let reported = false;
let maxBytes = 64 * 1024;

function report(message: ChildMessage, exitCode: number): void {
  if (reported || process.send === undefined) return;
  reported = true;
  process.send(message, () => process.exit(exitCode));
}

process.on('disconnect', () => process.exit(reported ? 0 : 70));
process.on('uncaughtException', (error) => {
  report({ type: 'error', kind: 'task', text: capText(`uncaught exception: ${describeError(error)}`, maxBytes) }, 1);
  if (reported) setTimeout(() => process.exit(1), 1000).unref();
});
process.on('unhandledRejection', (reason) => {
  report({ type: 'error', kind: 'task', text: capText(`unhandled rejection: ${describeError(reason)}`, maxBytes) }, 1);
});

process.on('message', (raw: unknown) => {
  let message;
  try {
    message = decodeParentMessage(raw);
  } catch (error) {
    report({ type: 'error', kind: 'load', text: describeError(error) }, 1);
    return;
  }
  maxBytes = message.maxResultBytes;
  void runTask(message).then((outcome) => report(outcome, 0));
});

process.send?.({ type: 'ready' } satisfies ChildMessage);
