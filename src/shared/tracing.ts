import { createRequire } from 'node:module';

/**
 * Optional OpenTelemetry. When the host application has `@opentelemetry/api` installed, the
 * trace context active at `schedule()` is stored with the request (`traceparent`), and the
 * launcher runs each try in a span linked to it. Without the package nothing is loaded and
 * nothing is recorded: the lookup happens once, and a missing package costs one failed resolve.
 */

/** The part of @opentelemetry/api the runner uses. */
export interface OtelApi {
  context: { active(): unknown };
  propagation: {
    inject(context: unknown, carrier: Record<string, string>): void;
    extract(context: unknown, carrier: Record<string, string>): unknown;
  };
  trace: {
    getTracer(name: string): {
      startSpan(
        name: string,
        options: Record<string, unknown>,
        context?: unknown,
      ): {
        setAttribute(key: string, value: string | number | boolean): unknown;
        setStatus(status: { code: number; message?: string }): unknown;
        end(endTime?: number): void;
      };
    };
    getSpanContext(context: unknown): unknown;
  };
  ROOT_CONTEXT: unknown;
}

let api: OtelApi | null | undefined;

/** @opentelemetry/api if the application has it, else null (looked up once). */
export function otelApi(): OtelApi | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

/** The W3C traceparent of the active context, or null (no package, no propagator, no span). */
export function currentTraceparent(): string | null {
  const otel = otelApi();
  if (otel === null) return null;
  const carrier: Record<string, string> = {};
  otel.propagation.inject(otel.context.active(), carrier);
  const value = carrier.traceparent;
  return typeof value === 'string' && value.length <= 256 ? value : null;
}
