// `collect --output json`: one JSON object per event on a stream, like execsnoop, tcplife and
// syscount together. bigint values (raw syscall arguments) print as hex strings.
import type { Writable } from 'node:stream'
import type { CapturedEvent, CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { eventWallNs, formatEventTime } from '@ebbflow/common/event-time'
import type { WallClock } from '@ebbflow/common/wire'
import type { CaptureSink } from './capture.ts'
import { collectorClock } from './clock.ts'

function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value
}

/**
 * One line per event, each with its RFC 3339 `time` (nanoseconds) first: the collector's one
 * clock (clock.ts), so the time printed is the time a publisher would send.
 */
export function formatJsonLines(events: readonly CapturedEvent[], clock: WallClock): string {
  let text = ''
  for (const e of events) {
    const time = formatEventTime(eventWallNs(clock.offsetNs, e.bootNs))
    text += `${JSON.stringify({ time, ...e }, replacer)}\n`
  }
  return text
}

export class JsonLinesSink implements CaptureSink {
  private readonly out: Writable

  private readonly clock = collectorClock()

  constructor(out: Writable) {
    this.out = out
  }

  records(events: RecordEvent[], _family: Family): void {
    this.out.write(formatJsonLines(events, this.clock))
  }

  counters(events: CounterEvent[]): void {
    this.out.write(formatJsonLines(events, this.clock))
  }
}
