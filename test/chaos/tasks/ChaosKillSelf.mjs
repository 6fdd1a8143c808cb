import { isMainThread } from 'node:worker_threads';
import { Task } from 'cw-task-runner/task';

/**
 * Kills the process it runs in, every try: SIGKILL to itself in a child process; in a worker
 * thread (which lives in the launcher) it ends its thread with `process.exit`, the most a thread
 * can do to itself. Either way the try ends without a report, CRASHED, until the request is parked.
 */
export default class ChaosKillSelf extends Task {
  run() {
    if (isMainThread) process.kill(process.pid, 'SIGKILL');
    else process.exit(9);
    return new Promise(() => undefined);
  }
}
