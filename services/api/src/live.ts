// Live events for the `events` subscription. The transport (the in-process queue of embedded
// mode, or Kafka) is wired in by whoever starts the API; the API only needs something it can
// subscribe to, and filters each event by the request's filter and the caller's namespaces.
import type { CapturedEvent, Family } from '@ebbflow/common'
import { familyOf as wireFamilyOf } from '@ebbflow/common/wire'
import {
  createPubSub,
  pipe,
  Repeater,
  SlidingBuffer,
  filter as yogaFilter,
} from '@graphql-yoga/subscription'
import type { EventFilter, Scope } from './sql.ts'
import { nsToTime } from './time.ts'

export interface LiveEvent {
  /** The decoded event with its enrichment meta (namespace, pod, labels…). */
  event: CapturedEvent
  /** Wall-clock time, ns since the epoch, when the transport knows it. */
  timeNs?: bigint
}

export interface LiveSource {
  /** A fresh stream per subscriber; returning from the iterator unsubscribes. */
  subscribe(): AsyncIterable<LiveEvent>
}

/** The family of a live event; drop counts are not events a subscriber asks for. */
export function familyOf(event: CapturedEvent): Family | undefined {
  return event.kind === 'drops' ? undefined : wireFamilyOf(event)
}

/** ClickHouse DateTime64 text compares in time order, so filter bounds compare as text. */
export function liveMatches(
  live: LiveEvent,
  filter: EventFilter,
  scope: Scope,
  families: readonly Family[] | null | undefined,
): boolean {
  const family = familyOf(live.event)
  if (!family) return false
  if (families && families.length > 0 && !families.includes(family)) return false
  const meta = live.event.meta
  const namespace = meta?.namespace ?? ''
  if (!scope.all && !scope.namespaces.includes(namespace)) return false
  if (filter.from != null || filter.to != null) {
    if (live.timeNs === undefined) return false
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
  const { meta, ...rest } = live.event as CapturedEvent & { meta?: CapturedEvent['meta'] }
  const data = JSON.parse(
    JSON.stringify(rest, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as Record<string, unknown>
  // The API's word for an IP version (the events call it `family`, the API's event family).
  if (live.event.kind === 'tcp' || live.event.kind === 'traffic') {
    data.ipVersion = data.family
    delete data.family
  }
  return {
    family: familyOf(live.event)!.toUpperCase() as Uppercase<Family>,
    kind: live.event.kind,
    time: live.timeNs === undefined ? null : nsToTime(live.timeNs),
    node: meta?.node ?? null,
    namespace: meta?.namespace ?? null,
    pod: meta?.pod ?? null,
    container: meta?.container ?? null,
    function: meta?.function ?? null,
    data,
  }
}

/** The library's SlidingBuffer, counting what it slides out (the oldest event, when full). */
class CountingSlidingBuffer extends SlidingBuffer {
  private readonly onDrop: () => void

  constructor(capacity: number, onDrop: () => void) {
    super(capacity)
    this.onDrop = onDrop
  }

  override add(value: unknown): void {
    if (this._q.length >= this._c) this.onDrop()
    super.add(value)
  }
}

const TOPIC = 'event'

/**
 * A LiveSource fed by `publish`, on the library's pub-sub: each subscriber is a Repeater over
 * the pub-sub's event target with a sliding buffer of `bufferSize` (past it the oldest event is
 * dropped and counted). A Repeater starts on its first pull: a subscriber gets the events
 * published after that (GraphQL pulls as soon as it subscribes).
 */
export class MemoryLiveSource implements LiveSource {
  private readonly target = new EventTarget()
  private readonly pubsub = createPubSub<{ [TOPIC]: [LiveEvent] }>({ eventTarget: this.target })
  private readonly stops = new Set<() => void>()
  private readonly bufferSize: number
  private closed = false
  dropped = 0

  constructor(bufferSize = 10_000) {
    this.bufferSize = bufferSize
  }

  get subscriberCount(): number {
    return this.stops.size
  }

  publish(event: LiveEvent): void {
    if (this.stops.size > 0) this.pubsub.publish(TOPIC, event)
  }

  close(): void {
    this.closed = true
    for (const stop of this.stops) stop()
  }

  subscribe(): AsyncIterable<LiveEvent> {
    const buffer = new CountingSlidingBuffer(this.bufferSize, () => {
      this.dropped++
    })
    return new Repeater<LiveEvent>(async (push, stop) => {
      if (this.closed) return stop()
      const listener = (e: Event) => {
        push((e as CustomEvent<LiveEvent>).detail)
      }
      this.target.addEventListener(TOPIC, listener)
      this.stops.add(stop)
      await stop
      this.target.removeEventListener(TOPIC, listener)
      this.stops.delete(stop)
    }, buffer)
  }
}

/**
 * Live events that pass the filter and the caller's namespaces. The source's Repeater is
 * returned (and so unsubscribed) at once, even while waiting for an event. The payload is made
 * by the field's `resolve` (one Repeater fewer per event than a `map` stage: bench/live-tail).
 */
export function liveStream(
  live: LiveSource,
  filter: EventFilter,
  scope: Scope,
  families: readonly Family[] | undefined,
): AsyncIterable<LiveEvent> {
  return pipe(
    live.subscribe(),
    yogaFilter((e: LiveEvent) => liveMatches(e, filter, scope, families)),
  )
}
