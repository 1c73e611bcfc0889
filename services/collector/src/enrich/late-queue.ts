// The queue of events waiting for late metadata: bounded (the oldest leaves first when full),
// each with its own deadline, and a timer that asks for a retry while anything waits.
import type { CounterEvent, Family, RecordEvent } from '@ebbflow/common'

export interface HeldEvent {
  event: RecordEvent | CounterEvent
  /** undefined for counter events. */
  family: Family | undefined
  cgroupId: number
  deadline: number
  session: string | undefined
}

export interface LateQueueOptions {
  maxPending: number
  retryIntervalMs: number
  /** Called every retryIntervalMs while events wait. */
  retry: () => void
}

export class LateQueue {
  private pending: HeldEvent[] = []
  private timer: NodeJS.Timeout | undefined
  private readonly options: LateQueueOptions

  constructor(options: LateQueueOptions) {
    this.options = options
  }

  get length(): number {
    return this.pending.length
  }

  /** Holds `h`; returns the oldest held event when the queue was full (it is no longer held). */
  hold(h: HeldEvent): HeldEvent | undefined {
    const evicted =
      this.pending.length >= this.options.maxPending ? this.pending.shift() : undefined
    this.pending.push(h)
    if (!this.timer) {
      this.timer = setInterval(this.options.retry, this.options.retryIntervalMs)
      this.timer.unref()
    }
    return evicted
  }

  /** Takes out, in the order they came, the held events for which `done` says true. */
  release(done: (h: HeldEvent) => boolean): HeldEvent[] {
    if (this.pending.length === 0) return []
    const out: HeldEvent[] = []
    const still: HeldEvent[] = []
    for (const h of this.pending) (done(h) ? out : still).push(h)
    this.pending = still
    if (still.length === 0) this.stopTimer()
    return out
  }

  stopTimer(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
