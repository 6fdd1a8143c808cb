import { Task, type ScheduleParams, type RequestEnqueuer } from '../task.js';

export interface NoOpOptions {
  created_from?: string;
}

/**
 * The sample task: does nothing and says so. Scheduled through its factory it records where it
 * was created from (`created_from: self.schedule`).
 */
export default class NoOp extends Task<NoOpOptions, string> {
  static override schedule(enqueuer: RequestEnqueuer, options?: NoOpOptions, params?: ScheduleParams): Promise<string> {
    return enqueuer.schedule('NoOp', { created_from: 'self.schedule', ...options }, params);
  }

  run(): string {
    return `NOOP ${this.id}: OK! created from: ${this.options.created_from ?? '(not given)'}`;
  }
}
