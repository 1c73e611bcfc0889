// Runs the real kernel capture for a test and keeps everything it hands over.

import {
  type CaptureSink,
  type CollectorConfigInput,
  KernelCapture,
  loadCollectorConfig,
} from '@ebbflow/collector'
import {
  type CapturedEvent,
  type CounterEvent,
  createLogger,
  type Family,
  type RecordEvent,
} from '@ebbflow/common'

export class RecordingSink implements CaptureSink {
  readonly events: CapturedEvent[] = []
  private waiters: { match: () => boolean; resolve: () => void }[] = []

  records(events: RecordEvent[], _family: Family): void {
    for (const e of events) this.events.push(e)
    this.wake()
  }

  counters(events: CounterEvent[]): void {
    for (const e of events) this.events.push(e)
    this.wake()
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.match()) return true
      w.resolve()
      return false
    })
  }

  /** Resolves once `predicate` holds for the events seen so far; rejects after timeoutMs. */
  waitFor(
    predicate: (events: CapturedEvent[]) => boolean,
    timeoutMs = 10_000,
    what = 'events',
  ): Promise<void> {
    if (predicate(this.events)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      )
      this.waiters.push({
        match: () => predicate(this.events),
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  of<K extends CapturedEvent['kind']>(kind: K): Extract<CapturedEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<CapturedEvent, { kind: K }> => e.kind === kind)
  }
}

export function startCapture(input: CollectorConfigInput): {
  capture: KernelCapture
  sink: RecordingSink
} {
  const sink = new RecordingSink()
  // Counters are read by the tests themselves (pollCounters), not on a timer.
  const config = loadCollectorConfig({ counterIntervalMs: '3600000', flushMs: '10', ...input }, {})
  const capture = KernelCapture.start(config, sink, createLogger('test', 'warn'))
  return { capture, sink }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}
