// One logger for every service: log lines on stderr (stdout is left to data, such as
// `collect --output json`), secrets redacted by default. JSON lines for machines and files;
// on a terminal, readable lines (pino-pretty), so `ebbflow up` can be read as it runs.
import { createRequire } from 'node:module'
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

/** pino's levels, for every service's `logLevel` setting. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** `auto`: readable lines when stderr is a terminal, JSON lines otherwise. */
export type LogFormat = 'json' | 'pretty' | 'auto'

const REDACT = [
  '*.password',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
  '*.sasl',
  '*.secret',
]

/**
 * Formats each line in the writing call, not in a worker or a piped stream: a line logged just
 * before the process exits (a fatal start-up error) is on the terminal when it exits.
 */
function prettyStderr(): DestinationStream {
  // Loaded only for a terminal: pino-pretty and its 40-odd modules are ~3 MiB of a collector
  // that logs JSON lines.
  const { prettyFactory } = createRequire(import.meta.url)(
    'pino-pretty',
  ) as typeof import('pino-pretty')
  const format = prettyFactory({
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: false,
  })
  return {
    write(line: string) {
      // Clears a status line that `ebbflow up` keeps at the bottom (it draws it again).
      process.stderr.write(`\r\x1b[2K${format(line)}`)
    },
  }
}

export function createLogger(
  name: string,
  level: LogLevel = 'info',
  format: LogFormat = 'auto',
): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true)
  return pino(
    { name, level, redact: { paths: REDACT, censor: '[redacted]' } },
    pretty ? prettyStderr() : pino.destination(2),
  )
}
