// `collect --output json`: one JSON object per event on a stream, like execsnoop, tcplife and
// syscount together. bigint values (raw syscall arguments) print as hex strings.
import type { Writable } from 'node:stream'
import type { CapturedEvent, CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { bootTimeNs } from '@ebbflow/native'
import type { CaptureSink } from './capture.ts'

function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value
}

/**
 * One line per event, each with an ISO `time` first. Records carry CLOCK_BOOTTIME; the
 * offset to wall time is taken once (at start), so a later clock step does not reorder them.
 */
export function formatJsonLines(events: readonly CapturedEvent[], bootToEpochMs: number): string {
  let text = ''
  for (const e of events) {
    const time = new Date(bootToEpochMs + e.bootNs / 1e6).toISOString()
    text += `${JSON.stringify({ time, ...e }, replacer)}\n`
  }
  return text
}

export class JsonLinesSink implements CaptureSink {
  private readonly out: Writable

  private readonly bootToEpochMs = Date.now() - bootTimeNs() / 1e6

  constructor(out: Writable) {
    this.out = out
  }

  records(events: RecordEvent[], _family: Family): void {
    this.out.write(formatJsonLines(events, this.bootToEpochMs))
  }

  counters(events: CounterEvent[]): void {
    this.out.write(formatJsonLines(events, this.bootToEpochMs))
  }
}
