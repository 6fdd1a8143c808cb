/**
 * cw-task-runner: a PostgreSQL-backed task runner that runs every task in its own process.
 * This list is the public API; everything else is internal.
 */
export { createRunner, type CreateRunnerOptions, type Runner, type RunnerStatus } from './launcher/runner.js';
export { createClient, type RunnerClient, type RunnerClientOptions } from './client/create-client.js';
export type { ScheduleCallParams, ScheduleItem } from './client/request-writer.js';
export type { RunnerEvents } from './launcher/events.js';
export type { ProbeResult } from './launcher/probe-service.js';
export type { RunningRequest } from './launcher/dispatcher.js';
export { listRecurring, pruneTable, type RecurringListing } from './launcher/lifecycle-commands.js';
export type { PruneResult } from './store/prune-requests.js';
export type { RecurringEntryOptions } from './config/recurring-config.js';
export type { EndedResult, RetentionOptions } from './config/retention-config.js';
export {
  runTaskOnce,
  type RunTaskOnceOptions,
  type RunTaskOnceResult,
  type TaskOutputLine,
} from './launcher/run-task-once.js';

export { Task, type ScheduleParams, type TaskRequestInfo, type RequestEnqueuer } from './tasks/task.js';
export { parseOptions, stringifyOptions } from './tasks/options.js';
export { scanTasksDir, TaskRegistry } from './tasks/registry.js';

export {
  createTaskRunnerRequestTable,
  dropTaskRunnerRequestTable,
  migrate,
  type ExtraColumns,
  type MigrateResult,
} from './store/migrations.js';
export type { TableOrigin } from './store/table-adoption.js';
export { RequestResult, type RequestResultValue, type TaskRequestRow } from './store/schema.js';
export type { StatusCounts } from './store/state-counts.js';
export type { CancelResult } from './store/cancel-request.js';
export type { RequestAttempt } from './store/attempt-history.js';
export { attemptsTableFor } from './store/attempts-table.js';
export type { Executor, PgQueryable } from './store/database.js';

export {
  defaultPrefetch,
  defaults,
  resolveRunnerConfig,
  type DatabaseInput,
  type RetryBackoffOptions,
  type StartRetryOptions,
  type RunnerConfig,
  type RunnerOptions,
} from './config/runner-config.js';
export { parseTableName, type TableName } from './config/identifiers.js';
export type { ChildLimits, ChildPermissions } from './config/confinement.js';
export { cancelChannelFor } from './config/identifiers.js';

export { createMetrics, type CreateMetricsOptions, type TaskRunnerMetrics } from './metrics/metrics.js';
export { serveMetrics, type MetricsServer } from './metrics/metrics-server.js';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/dashboard-server.js';
export { Inspector } from './store/inspector.js';
export type {
  RequestDetail,
  RequestFilter,
  RequestPage,
  RequestSummary,
  ListRequestsParams,
} from './store/inspection.js';
export type { RequestState } from './store/fragments.js';
export type { LauncherAlive, MinuteActivity, OpenActivity, QueueDepth, RunningTry } from './store/activity.js';
export type { RunnerStats } from './launcher/runner.js';

export { createStreamLogger, silentLogger, type LogLevel, type Logger } from './shared/logger.js';
export { TypedEmitter } from './shared/typed-emitter.js';
export { ChildCrashError, ConfigError, TaskRunnerError, UnknownTaskError, type ErrorCode } from './errors.js';
