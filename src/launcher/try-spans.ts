import { otelApi, type OtelApi } from '../shared/tracing.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { RunnerEvents } from './events.js';

/** OpenTelemetry's SpanKind.CONSUMER and SpanStatusCode values (stable numbers of the API). */
const consumerKind = 4;
const statusOk = 1;
const statusError = 2;
/** Spans left open by tries whose end was never told are dropped past this many (no leak). */
const maxOpenSpans = 10_000;

type Span = ReturnType<ReturnType<OtelApi['trace']['getTracer']>['startSpan']>;

/**
 * Runs each try in an OpenTelemetry span when the application has `@opentelemetry/api`: the span
 * starts when the try's process starts (`task:started`, with the try's own start time) and ends
 * when its outcome is written (`task:completed`). It is linked, not parented, to the
 * `traceparent` stored at `schedule()`: a try may run hours later, or several times, and a link
 * shows where it came from without stretching the scheduling trace over all of that.
 *
 * Built from the runner's events, so the launch path pays nothing for it; without the package
 * nothing is subscribed. The traceparent is parsed here rather than through the application's
 * propagator, so a link is made whatever propagators are registered.
 *
 * Returns a function that unsubscribes and ends the spans still open.
 */
export function traceTries(events: TypedEmitter<RunnerEvents>): () => void {
  const otel = otelApi();
  if (otel === null) return () => undefined;
  // The API's proxy tracer: it reaches the provider the application registers, even a later one.
  const tracer = otel.trace.getTracer('cw-task-runner');
  const open = new Map<string, Span>();
  const key = (id: string, tries: number) => `${id}:${tries}`;
  const offStarted = events.on('task:started', (e) => {
    if (open.size >= maxOpenSpans) return;
    const link = spanContextOf(e.traceparent);
    const span = tracer.startSpan(
      `run ${e.taskClassName}`,
      {
        kind: consumerKind,
        startTime: e.startedAtMs,
        links: link === null ? [] : [{ context: link }],
        attributes: {
          'task_runner.request.id': e.id,
          'task_runner.task': e.taskClassName,
          'task_runner.try': e.tries,
          'task_runner.mode': e.mode,
          'task_runner.pid': e.pid,
          'task_runner.pickup_ms': Math.max(0, e.startedAtMs - e.runnableAtMs),
        },
      },
      otel.ROOT_CONTEXT,
    );
    open.set(key(e.id, e.tries), span);
  });
  const offCompleted = events.on('task:completed', (e) => {
    const span = open.get(key(e.id, e.tries));
    if (span === undefined) return;
    open.delete(key(e.id, e.tries));
    span.setAttribute('task_runner.result', e.result);
    span.setAttribute('task_runner.ended', e.ended);
    if (e.requestResult !== null) span.setAttribute('task_runner.request.result', e.requestResult);
    if (e.result === 'FINISHED') span.setStatus({ code: statusOk });
    else span.setStatus({ code: statusError, message: firstLine(e.resultText) ?? e.result });
    span.end();
  });
  return () => {
    offStarted();
    offCompleted();
    for (const span of open.values()) span.end();
    open.clear();
  };
}

/** A W3C traceparent (`00-<trace id>-<span id>-<flags>`) as a remote span context, or null. */
export function spanContextOf(
  traceparent: string | null,
): { traceId: string; spanId: string; traceFlags: number; isRemote: true } | null {
  if (traceparent === null) return null;
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(traceparent.trim());
  if (match === null || match[1] === 'ff') return null;
  const [, , traceId, spanId, flags] = match;
  // All-zero ids are invalid by the spec.
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return null;
  return { traceId: traceId!, spanId: spanId!, traceFlags: Number.parseInt(flags!, 16), isRemote: true };
}

function firstLine(text: string | null): string | null {
  if (text === null) return null;
  const line = text.split('\n', 1)[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
