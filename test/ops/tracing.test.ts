import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spanContextOf } from '../../dist/launcher/try-spans.js';
import { getRow, useTestDatabase, waitFor } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * The try runs in an OpenTelemetry span linked to the traceparent stored at schedule(). The SDK's
 * in-memory exporter needs an older @opentelemetry/api than the one installed, so the test brings
 * the smallest real implementation of the API's interfaces instead: a recording tracer, a context
 * manager on AsyncLocalStorage and a W3C traceparent propagator, registered globally as an
 * application's SDK would register its own.
 */

/** A span that remembers what was done to it. */
class RecordedSpan implements Span {
  readonly attributes: Attributes = {};
  status: SpanStatus = { code: 0 };
  ended = false;
  readonly #context: SpanContext = {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    traceFlags: 1,
  };
  constructor(
    readonly name: string,
    readonly options: SpanOptions,
    readonly parent: SpanContext | undefined,
  ) {
    Object.assign(this.attributes, options.attributes);
    if (parent !== undefined) this.#context.traceId = parent.traceId;
  }
  get links(): Link[] {
    return this.options.links ?? [];
  }
  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value as never;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(): void {}
}

const spans: RecordedSpan[] = [];
const tracer: Tracer = {
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const span = new RecordedSpan(name, options, trace.getSpanContext(ctx));
    spans.push(span);
    return span;
  },
  startActiveSpan: (() => {
    throw new Error('not used');
  }) as Tracer['startActiveSpan'],
};
const provider: TracerProvider = { getTracer: () => tracer };

class StorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

const traceparentPropagator: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc !== undefined) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent'],
};

const t = useTestDatabase();
const runners = useTestRunners();

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new StorageContextManager());
  propagation.setGlobalPropagator(traceparentPropagator);
});
afterAll(() => {
  trace.disable();
  context.disable();
  propagation.disable();
});

describe('OpenTelemetry', () => {
  it('stores the traceparent active at schedule() and runs the try in a span linked to it', async () => {
    const runner = await runners.start(t, { concurrency: 2 });
    const parent = tracer.startSpan('request handler', {}, ROOT_CONTEXT);
    const id = await context.with(trace.setSpan(ROOT_CONTEXT, parent), () =>
      runner.schedule('Echo', { text: 'traced' }),
    );
    const { traceId, spanId } = parent.spanContext();
    expect((await getRow(t.pool, id))!.traceparent).toBe(`00-${traceId}-${spanId}-01`);

    await finalCompletion(runner, id);
    const span = await waitFor(() => spans.find((s) => s.attributes['task_runner.request.id'] === id && s.ended));
    expect(span.name).toBe('run Echo');
    expect(span.links).toEqual([{ context: { traceId, spanId, traceFlags: 1, isRemote: true } }]);
    // Linked, not parented: the try is a trace of its own.
    expect(span.parent).toBeUndefined();
    expect(span.attributes).toMatchObject({
      'task_runner.task': 'Echo',
      'task_runner.try': 1,
      'task_runner.result': 'FINISHED',
      'task_runner.ended': true,
      'task_runner.request.result': 'FINISHED',
    });
    expect(['fresh', 'spare']).toContain(span.attributes['task_runner.mode']);
    expect(span.status).toEqual({ code: 1 });
    // It starts when the try's process started: never before the request was scheduled.
    expect(span.options.startTime as number).toBeGreaterThan(Date.now() - 60_000);
    await runner.stop();
  });

  it("marks a failed try's span as an error, and links nothing when nothing was traced at schedule()", async () => {
    const runner = await runners.start(t, { concurrency: 1 });
    const id = await runner.schedule('Fail', { reason: 'traced failure' }, { tryLimit: 2 });
    expect((await getRow(t.pool, id))!.traceparent).toBeNull();
    await finalCompletion(runner, id);
    const tries = await waitFor(() => {
      const ended = spans.filter((s) => s.attributes['task_runner.request.id'] === id && s.ended);
      return ended.length === 2 ? ended : null;
    });
    expect(tries.map((s) => s.attributes['task_runner.try']).sort()).toEqual([1, 2]);
    for (const span of tries) {
      expect(span.links).toEqual([]);
      expect(span.attributes['task_runner.result']).toBe('FAILED');
      expect(span.status.code).toBe(2);
      expect(span.status.message).toContain('traced failure');
    }
    await runner.stop();
  });

  it('reads only well-formed traceparents', () => {
    expect(spanContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
    });
    expect(spanContextOf(null)).toBeNull();
    expect(spanContextOf('garbage')).toBeNull();
    expect(spanContextOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeNull();
    expect(spanContextOf('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeNull();
  });
});
