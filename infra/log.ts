/**
 * Structured logs of the long-running processes (`dockergate coordinator`, `dockergate worker`):
 * one JSON object per line on stderr (pino), with the service name, the pid, and the trace id of
 * the active span when telemetry is on (`trace_id`, as OpenTelemetry's log data model names it),
 * so a log line of a unit can be found from its trace and back. Commands that a person runs print
 * plain text instead.
 */
import { pino } from 'pino';
import { activeTraceId } from './telemetry.js';

/** Writes one line of `service`'s log. */
export type ServiceLog = (message: string) => void;

export function serviceLog(service: string): ServiceLog {
  const logger = pino(
    {
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => {
        const traceId = activeTraceId();
        return traceId ? { trace_id: traceId } : {};
      },
    },
    // Synchronous: the last lines before an exit (or a kill) are not lost in a buffer.
    pino.destination({ fd: 2, sync: true }),
  );
  return (message) => logger.info(message);
}
