// `collect --output json`: one JSON object per event on a stream, like execsnoop, tcplife and
// syscount together. bigint values (raw syscall arguments) print as hex strings.
import type { Writable } from 'node:stream'
import type { CapturedEvent, CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import type { CaptureSink } from './capture.ts'

function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value
}

export function formatJsonLines(events: readonly CapturedEvent[]): string {
  let text = ''
  for (const e of events) text += `${JSON.stringify(e, replacer)}\n`
  return text
}

export class JsonLinesSink implements CaptureSink {
  private readonly out: Writable

  constructor(out: Writable) {
    this.out = out
  }

  records(events: RecordEvent[], _family: Family): void {
    this.out.write(formatJsonLines(events))
  }

  counters(events: CounterEvent[]): void {
    this.out.write(formatJsonLines(events))
  }
}
