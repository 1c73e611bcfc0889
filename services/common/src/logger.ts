// One logger for every service: JSON lines on stderr (stdout is left to data, such as
// `collect --output json`), secrets redacted by default.
import { type Logger, pino } from 'pino'

export type { Logger }

/** pino's levels, for every service's `logLevel` setting. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

const REDACT = [
  '*.password',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
  '*.sasl',
  '*.secret',
]

export function createLogger(name: string, level: LogLevel = 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination(2))
}
