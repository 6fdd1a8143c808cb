import { Task } from 'cw-task-runner/task';
import { record } from './ledger-client.mjs';

/** Records its start, works `options.ms` (default 0), records its finish: one ledger entry each. */
export default class ChaosWork extends Task {
  async run() {
    await record(this, 'start');
    const ms = this.options?.ms ?? 0;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    await record(this, 'finish');
    return 'ok';
  }
}
