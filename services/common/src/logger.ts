// One logger for every service: JSON lines on stderr (stdout is left to data, such as
// `collect --output json`), secrets redacted by default.
import { type Logger, pino } from 'pino'

export type { Logger }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

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
