import { TaskRunnerError } from '../errors.js';
import type { RecurringListing } from '../launcher/lifecycle-commands.js';
import { requestStates, type RequestState } from '../store/fragments.js';
import type { RequestFilter } from '../store/inspection.js';
import type { Inspector } from '../store/inspector.js';

/** An answer of the JSON API: a status and a value to serialise. */
export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** A request to the API after the server has checked who sent it. */
export interface ApiCall {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body of a POST (an object), or null. */
  body: Record<string, unknown> | null;
}

const idPattern = /^\d{1,19}$/;

function filterFrom(source: { get(name: string): string | null | undefined }): RequestFilter {
  const pick = (name: string): string | undefined => {
    const value = source.get(name);
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
  };
  const state = pick('state');
  if (state !== undefined && !requestStates.includes(state as RequestState)) {
    throw new TaskRunnerError('CONFIG_INVALID', `state must be one of ${requestStates.join(', ')}`);
  }
  return {
    state: state as RequestState | undefined,
    taskClassName: pick('task'),
    queue: pick('queue'),
    text: pick('text'),
  };
}

/** What the API reads and may do besides the inspector's requests. */
export interface ApiParams {
  readOnly: boolean;
  staleMs: number;
  /** The recurring entries with their next due time (the same listing as the `recurring` command). */
  listRecurring(): Promise<RecurringListing[]>;
}

/**
 * The dashboard's JSON API over an inspector: reads (overview, requests, one request, running
 * tries, recurring entries) and, unless read-only, actions (retry, cancel, delete, bulk retry). Routing only: the
 * server has already checked the access token and, for actions, the CSRF token and origin.
 */
export async function answer(inspector: Inspector, call: ApiCall, params: ApiParams): Promise<ApiAnswer> {
  const { method, path } = call;
  if (method === 'GET') {
    if (path === '/api/overview') {
      const [counts, open, minutes, launchers] = await Promise.all([
        inspector.counts(),
        inspector.open(),
        inspector.perMinute(60),
        inspector.launchers(params.staleMs),
      ]);
      return {
        status: 200,
        body: {
          now: new Date(),
          table: inspector.table.qualified,
          readOnly: params.readOnly,
          counts,
          open,
          minutes,
          launchers,
        },
      };
    }
    if (path === '/api/requests') {
      const limitText = call.query.get('limit');
      const limit = limitText === null ? 50 : Number(limitText);
      const before = call.query.get('before') ?? undefined;
      const page = await inspector.list({
        ...filterFrom(call.query),
        limit,
        before: before === '' ? undefined : before,
      });
      return { status: 200, body: page };
    }
    if (path === '/api/running') {
      return { status: 200, body: { now: new Date(), running: await inspector.running() } };
    }
    if (path === '/api/recurring') {
      return { status: 200, body: { now: new Date(), recurring: await params.listRecurring() } };
    }
    const one = /^\/api\/requests\/([^/]+)$/.exec(path);
    if (one !== null) {
      if (!idPattern.test(one[1]!)) return { status: 400, body: { error: 'invalid request id' } };
      const detail = await inspector.show(one[1]!);
      return detail === null
        ? { status: 404, body: { error: `request ${one[1]} does not exist` } }
        : { status: 200, body: detail };
    }
    return { status: 404, body: { error: 'not found' } };
  }
  if (method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
  if (params.readOnly) return { status: 403, body: { error: 'the dashboard is read-only' } };
  const action = /^\/api\/requests\/([^/]+)\/(retry|cancel|delete)$/.exec(path);
  if (action !== null) {
    const id = action[1]!;
    if (!idPattern.test(id)) return { status: 400, body: { error: 'invalid request id' } };
    if (action[2] === 'retry') await inspector.retry(id);
    else if (action[2] === 'delete') await inspector.delete(id);
    else return { status: 200, body: { id, ...(await inspector.cancel(id)) } };
    return { status: 200, body: { id, done: action[2] } };
  }
  if (path === '/api/retry-matching') {
    const body = call.body ?? {};
    const filter = filterFrom({ get: (name) => (typeof body[name] === 'string' ? (body[name] as string) : undefined) });
    if (
      filter.state === undefined &&
      filter.taskClassName === undefined &&
      filter.queue === undefined &&
      filter.text === undefined
    ) {
      return { status: 400, body: { error: 'a bulk retry needs a filter (state, task, queue or text)' } };
    }
    const ids = await inspector.retryMatching(filter);
    return { status: 200, body: { retried: ids.length, ids } };
  }
  return { status: 404, body: { error: 'not found' } };
}

/** The HTTP status of an error an action raised. */
export function statusOfError(error: unknown): ApiAnswer {
  if (error instanceof TaskRunnerError) {
    const status =
      error.code === 'REQUEST_NOT_FOUND'
        ? 404
        : error.code === 'ALREADY_RUNNING'
          ? 409
          : error.code === 'CONFIG_INVALID'
            ? 400
            : 500;
    return { status, body: { error: error.message } };
  }
  return { status: 500, body: { error: error instanceof Error ? error.message : String(error) } };
}
