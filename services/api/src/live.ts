// Live events for the `events` subscription. The transport (the in-process queue of embedded
// mode, or Kafka) is wired in by whoever starts the API; the API only needs something it can
// subscribe to, and filters each event by the request's filter and the caller's namespaces.
import type { CapturedEvent, Family } from '@ebbflow/common'
import { type Decoded, type WireDrops, familyOf as wireFamilyOf } from '@ebbflow/common/wire'
import type { EventFilter, Scope } from './sql.ts'
import { nsToTime } from './time.ts'

/**
 * An event as it crossed the transport, with its enrichment meta (namespace, pod, labels…) and
 * the wall-clock time the collector stamped it with (`timeNs`, ns since the epoch; 0 for a
 * record that carried none). The same shape from Kafka and from `up`'s in-process queue.
 */
export type LiveEvent = Decoded<CapturedEvent | WireDrops>

export interface LiveSource {
  /** A fresh stream per subscriber; returning from the iterator unsubscribes. */
  subscribe(): AsyncIterable<LiveEvent>
}

/** The family of a live event; drop counts are not events a subscriber asks for. */
export function familyOf(event: LiveEvent): Family | undefined {
  return event.kind === 'drops' ? undefined : wireFamilyOf(event)
}

/** ClickHouse DateTime64 text compares in time order, so filter bounds compare as text. */
export function liveMatches(
  live: LiveEvent,
  filter: EventFilter,
  scope: Scope,
  families: readonly Family[] | null | undefined,
): boolean {
  const family = familyOf(live)
  if (!family) return false
  if (families && families.length > 0 && !families.includes(family)) return false
  const meta = live.meta
  const namespace = meta?.namespace ?? ''
  if (!scope.all && !scope.namespaces.includes(namespace)) return false
  if (filter.from != null || filter.to != null) {
    if (live.timeNs === 0n) return false
    const t = nsToTime(live.timeNs)
    if (filter.from != null && t < filter.from) return false
    if (filter.to != null && t >= filter.to) return false
  }
  const exact: [string | null | undefined, string | undefined][] = [
    [filter.namespace, meta?.namespace],
    [filter.pod, meta?.pod],
    [filter.container, meta?.container],
    [filter.function, meta?.function],
    [filter.node, meta?.node],
  ]
  for (const [want, got] of exact) if (want != null && want !== (got ?? '')) return false
  for (const l of filter.labels ?? []) {
    const v = meta?.labels?.[l.key]
    if (v === undefined || (l.value != null && v !== l.value)) return false
  }
  return true
}

/** The subscription's payload: the pod columns up front, the event itself as JSON. */
export function livePayload(live: LiveEvent) {
  // The time is the payload's own field; the rest of the event is its data.
  const { meta, timeNs, ...rest } = live as LiveEvent & { meta?: CapturedEvent['meta'] }
  const data = JSON.parse(
    JSON.stringify(rest, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as Record<string, unknown>
  // The API's word for an IP version (the events call it `family`, the API's event family).
  if (live.kind === 'tcp' || live.kind === 'traffic') {
    data.ipVersion = data.family
    delete data.family
  }
  return {
    family: familyOf(live)!.toUpperCase() as Uppercase<Family>,
    kind: live.kind,
    time: timeNs === 0n ? null : nsToTime(timeNs),
    node: meta?.node ?? null,
    namespace: meta?.namespace ?? null,
    pod: meta?.pod ?? null,
    container: meta?.container ?? null,
    function: meta?.function ?? null,
    data,
  }
}

/**
 * A LiveSource fed by `publish`: each subscriber gets every event published after it
 * subscribed, buffered up to `bufferSize` (older ones are dropped and counted). Hand-written
 * rather than @graphql-yoga/subscription's Repeater and SlidingBuffer, which keep the same
 * bound but cost about 3.5 times the CPU per event (bench/live-tail).
 */
export class MemoryLiveSource implements LiveSource {
  private readonly subscribers = new Set<{
    queue: LiveEvent[]
    wake: (() => void) | undefined
  }>()
  private readonly bufferSize: number
  private closed = false
  dropped = 0

  constructor(bufferSize = 10_000) {
    this.bufferSize = bufferSize
  }

  get subscriberCount(): number {
    return this.subscribers.size
  }

  publish(event: LiveEvent): void {
    for (const s of this.subscribers) {
      if (s.queue.length >= this.bufferSize) {
        s.queue.shift()
        this.dropped++
      }
      s.queue.push(event)
      s.wake?.()
    }
  }

  close(): void {
    this.closed = true
    for (const s of this.subscribers) s.wake?.()
  }

  subscribe(): AsyncIterable<LiveEvent> {
    const sub = { queue: [] as LiveEvent[], wake: undefined as (() => void) | undefined }
    this.subscribers.add(sub)
    const self = this
    return {
      [Symbol.asyncIterator]() {
        return {
          async next(): Promise<IteratorResult<LiveEvent>> {
            while (sub.queue.length === 0 && !self.closed && self.subscribers.has(sub))
              await new Promise<void>((resolve) => {
                sub.wake = resolve
              })
            sub.wake = undefined
            const value = sub.queue.shift()
            if (value === undefined) return { done: true, value: undefined }
            return { done: false, value }
          },
          async return(): Promise<IteratorResult<LiveEvent>> {
            self.subscribers.delete(sub)
            sub.wake?.()
            return { done: true, value: undefined }
          },
        }
      },
    }
  }
}

/**
 * Live events that pass the filter and the caller's namespaces; returning it unsubscribes from
 * the source at once, even while it waits for an event. The payload is made by the field's
 * `resolve`.
 */
export function liveStream(
  live: LiveSource,
  filter: EventFilter,
  scope: Scope,
  families: readonly Family[] | undefined,
): AsyncIterableIterator<LiveEvent> {
  const source = live.subscribe()[Symbol.asyncIterator]()
  const stream: AsyncIterableIterator<LiveEvent> = {
    [Symbol.asyncIterator]: () => stream,
    async next() {
      for (;;) {
        const r = await source.next()
        if (r.done) return { done: true, value: undefined }
        if (liveMatches(r.value, filter, scope, families)) return { done: false, value: r.value }
      }
    },
    async return() {
      await source.return?.()
      return { done: true, value: undefined }
    },
  }
  return stream
}
