/**
 * OpenTelemetry for every dockergate process: traces (one trace per scan, across processes),
 * metrics (the same counters `/metrics` serves) and the trace id for logs.
 *
 * Off by default: with no OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, any command) no SDK
 * is loaded and every span below is the API's no-op, so the embedded default pays nothing. With an
 * endpoint, spans go to `<endpoint>/v1/traces` and metrics to `<endpoint>/v1/metrics` over OTLP/HTTP
 * (JSON), batched, and are flushed when the process stops (`Telemetry.shutdown`).
 *
 * Invariant: trace context crosses processes only inside work units, as W3C `traceparent` /
 * `tracestate` headers (https://www.w3.org/TR/trace-context/) of the NATS message (`injectTraceContext`
 * in the requester, `extractTraceContext` in the worker), so a scan's spans in the CLI, the
 * coordinator and every worker share one trace id and form one tree.
 */
import { context, metrics, propagation, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { type HealthSource, UNIT_METRICS, UNITS_RUNNING } from './health.js';
import { PACKAGE_VERSION } from './versions.js';

const TRACER_NAME = 'dockergate';

export interface TelemetryOptions {
  /** `service.name` of this process's spans and metrics (`dockergate-worker`, …). */
  readonly service: string;
  /** OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318` (default: `OTEL_EXPORTER_OTLP_ENDPOINT`); none turns telemetry off. */
  readonly endpoint?: string;
  /** Export interval of metrics, in ms (default 15 s). */
  readonly metricIntervalMs?: number;
}

export interface Telemetry {
  /** Exports these counters as OpenTelemetry metrics too (read at each collection). */
  exportMetrics(source: HealthSource): void;
  /** Flushes what is buffered and stops exporting. Safe to call twice. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { exportMetrics: () => undefined, shutdown: async () => undefined };

/** Starts exporting when an endpoint is configured; otherwise returns a telemetry that does nothing. */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const endpoint = (options.endpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT)?.replace(/\/+$/, '');
  if (!endpoint) return OFF;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }, sdkMetrics, { OTLPMetricExporter }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/exporter-metrics-otlp-http'),
  ]);
  const resource = resourceFromAttributes({ 'service.name': options.service, 'service.version': PACKAGE_VERSION, 'process.pid': process.pid });
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }), { scheduledDelayMillis: 1000 })],
  });
  // Registers the W3C trace-context propagator and the AsyncLocalStorage context manager.
  tracerProvider.register();
  const meterProvider = new sdkMetrics.MeterProvider({
    resource,
    readers: [
      new sdkMetrics.PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
        exportIntervalMillis: options.metricIntervalMs ?? 15_000,
      }),
    ],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  let stopped: Promise<void> | undefined;
  return {
    exportMetrics(source) {
      observe(source);
    },
    shutdown() {
      stopped ??= Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]).then(() => {
        trace.disable();
        metrics.disable();
        propagation.disable();
        context.disable();
      });
      return stopped;
    },
  };
}

/** Observable instruments over a `HealthSource`: the numbers and names of `/metrics`, pulled at each export. */
function observe(source: HealthSource): void {
  const meter = metrics.getMeter(TRACER_NAME);
  for (const [field, name, description] of UNIT_METRICS) {
    meter.createObservableCounter(name, { description }).addCallback((result) => {
      for (const [kind, stats] of source.units()) result.observe(stats[field], { kind });
    });
  }
  meter.createObservableGauge(UNITS_RUNNING, { description: 'Units running now.' }).addCallback((result) => {
    for (const [kind, stats] of source.units()) result.observe(stats.running, { kind });
  });
  const counters = Object.keys(source.counters());
  for (const name of counters) {
    meter.createObservableCounter(name).addCallback((result) => result.observe(source.counters()[name] ?? 0));
  }
  for (const name of Object.keys(source.gauges?.() ?? {})) {
    meter.createObservableGauge(name).addCallback((result) => result.observe(source.gauges?.()[name] ?? 0));
  }
}

/** Marks the span failed with `err`, and returns `err` for rethrowing. */
function recordError(span: Span, err: unknown): unknown {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  return err;
}

/**
 * Runs `work` in a span named `name`, child of the active span (or of `parent`). An error is
 * recorded on the span and rethrown; the span always ends.
 */
export async function withSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, parent?: Context): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, { attributes }, parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (err) {
      throw recordError(span, err);
    } finally {
      span.end();
    }
  });
}

/** `withSpan` for synchronous work. */
export function spanSync<T>(name: string, attributes: Attributes, work: (span: Span) => T): T {
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, (span) => {
    try {
      return work(span);
    } catch (err) {
      throw recordError(span, err);
    } finally {
      span.end();
    }
  });
}

/** Writes the active trace context into message headers (`set(name, value)`). */
export function injectTraceContext(set: (name: string, value: string) => void): void {
  propagation.inject(context.active(), undefined, { set: (_carrier, name, value) => set(name, value) });
}

/** The trace context that `injectTraceContext` wrote into message headers (`get(name)`). */
export function extractTraceContext(get: (name: string) => string | undefined): Context {
  return propagation.extract(context.active(), undefined, {
    get: (_carrier, name) => get(name),
    keys: () => ['traceparent', 'tracestate'],
  });
}

/** The active trace id (32 hex digits), for logs; undefined outside a recorded span. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}
