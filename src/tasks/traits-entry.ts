/**
 * Entry of the traits inspector: a short-lived worker thread that imports one task file, reads
 * what its class declares, posts what it found, and is then terminated. The task file's
 * top-level code runs here, never in the launcher's thread. When children are confined it is a
 * child process instead (`node traits-entry.js <file> <class>`), answering on fd 3 and exiting.
 */
import { writeSync } from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { loadTaskClass } from './load-task.js';
import { describeDeclared, describePlain, type DeclaredValue, type TraitsMessage } from './traits-wire.js';

/** Reads one static, which may be a getter that throws. */
function declared(holder: object, name: string): DeclaredValue {
  try {
    return describeDeclared((holder as Record<string, unknown>)[name]);
  } catch (error) {
    return { typeOf: `getter that threw (${describeError(error).split('\n')[0]})` };
  }
}

function plain(holder: object, name: string): unknown {
  try {
    return describePlain((holder as Record<string, unknown>)[name]);
  } catch (error) {
    return { typeOf: `getter that threw (${describeError(error).split('\n')[0]})` };
  }
}

async function inspect(file: string, taskClassName: string): Promise<TraitsMessage> {
  try {
    const TaskClass = await loadTaskClass(file, taskClassName);
    return {
      type: 'declared',
      mode: declared(TaskClass, 'mode'),
      timeoutMs: declared(TaskClass, 'timeoutMs'),
      limits: plain(TaskClass, 'limits'),
      permissions: plain(TaskClass, 'permissions'),
    };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return { type: 'load-error', text: describeError(error), ...(typeof code === 'string' ? { code } : {}) };
  }
}

if (isMainThread) {
  const [file, taskClassName] = process.argv.slice(2) as [string, string];
  void inspect(file, taskClassName).then((message) => {
    writeSync(3, JSON.stringify(message));
    // Whatever the file left running (timers, sockets) is not waited for.
    process.exit(0);
  });
} else {
  const { file, taskClassName } = workerData as { file: string; taskClassName: string };
  void inspect(file, taskClassName).then((message) => parentPort?.postMessage(message));
}
