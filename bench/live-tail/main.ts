// bench/live-tail: the live subscription's hand-written source and stream (the API's) beside the
// same on the library's parts (@graphql-yoga/subscription: Repeater with a sliding buffer, pipe,
// filter), kept here as the variant measured and not shipped: it cost ~3.5x the CPU per event.
// Measures events/s through one subscriber that keeps up, and the heap a subscriber that never
// reads holds after many events (both bound it by the buffer). A and B alternate, median of the
// rounds: the machine is shared.
// Prints one JSON report and writes bench/reports/live-tail.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  type LiveEvent,
  type LiveSource,
  liveMatches,
  livePayload,
  liveStream,
  MemoryLiveSource,
} from '@ebbflow/api/live'
import type { EventFilter, Scope } from '@ebbflow/api/sql'
import type { Family } from '@ebbflow/common'
import {
  createPubSub,
  pipe,
  Repeater,
  SlidingBuffer,
  filter as yogaFilter,
} from '@graphql-yoga/subscription'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const EVENTS = Number(process.env.EVENTS ?? 20_000)
const BUFFER = 10_000
const SLOW_EVENTS = 200_000

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
 * The variant measured and not shipped. A LiveSource fed by `publish`, on the library's pub-sub: each subscriber is a Repeater over
 * the pub-sub's event target with a sliding buffer of `bufferSize` (past it the oldest event is
 * dropped and counted). A Repeater starts on its first pull: a subscriber gets the events
 * published after that (GraphQL pulls as soon as it subscribes).
 */
class YogaSource implements LiveSource {
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
function yogaStream(
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

interface Variant {
  name: string
  source: () => LiveSource & { publish(e: LiveEvent): void; close(): void; dropped: number }
  stream: (
    live: LiveSource,
    filter: EventFilter,
    scope: Scope,
    families: Family[] | undefined,
  ) => AsyncIterable<unknown>
  /** What remains to make the payload a client gets. */
  payload: (value: unknown) => unknown
}

const VARIANTS: Variant[] = [
  {
    name: 'handWritten',
    source: () => new MemoryLiveSource(BUFFER),
    stream: liveStream,
    // The subscription field's resolve makes the payload.
    payload: (e) => livePayload(e as LiveEvent),
  },
  {
    name: 'yogaSubscription',
    source: () => new YogaSource(BUFFER),
    stream: yogaStream,
    // The subscription field's resolve makes the payload.
    payload: (e) => livePayload(e as LiveEvent),
  },
]

const scope: Scope = { all: false, namespaces: ['shop'] }
function event(i: number): LiveEvent {
  return {
    kind: 'exec',
    timeNs: 1_700_000_000_000_000_000n + BigInt(i),
    pid: i,
    tgid: i,
    ppid: 1,
    uid: 0,
    gid: 0,
    cgroupId: 1,
    pidnsIno: 1,
    mntnsIno: 1,
    comm: 'sh',
    parentComm: 'bash',
    filename: '/bin/sh',
    args: ['sh', '-c', `echo ${i}`],
    argsTotalBytes: 10,
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
    // Every other event is another namespace's: the filter has work to do.
    meta: { node: 'n1', namespace: i % 2 === 0 ? 'shop' : 'bank', pod: 'web-1', labels: {} },
  }
}

/**
 * Events per CPU second from publish to a consumer that keeps up (published in bursts of 1,000):
 * CPU time, not wall time, as the shared machine's other load delays the turns in between.
 */
async function throughput(v: Variant): Promise<number> {
  const source = v.source()
  const it = v.stream(source, {}, scope, undefined)[Symbol.asyncIterator]()
  const start = process.cpuUsage()
  let received = 0
  const reading = (async () => {
    while (received < EVENTS / 2) {
      const r = await it.next()
      if (r.done) break
      v.payload(r.value)
      received++
    }
  })()
  for (let i = 0; i < EVENTS; i += 1000) {
    for (let j = i; j < i + 1000; j++) source.publish(event(j))
    await new Promise<void>((r) => setImmediate(r))
  }
  await reading
  const used = process.cpuUsage(start)
  const seconds = (used.user + used.system) / 1e6
  await it.return?.()
  source.close()
  if (received !== EVENTS / 2) throw new Error(`${v.name}: received ${received} of ${EVENTS / 2}`)
  return EVENTS / seconds
}

/** Heap held by a subscriber that never reads, after SLOW_EVENTS events; and its drops. */
async function slowSubscriber(v: Variant): Promise<{ heapBytes: number; dropped: number }> {
  const gc = (globalThis as { gc?: () => void }).gc
  const source = v.source()
  const it = v.stream(source, {}, scope, undefined)[Symbol.asyncIterator]()
  const first = it.next() // starts the subscription; never read again
  gc?.()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < SLOW_EVENTS; i++) {
    source.publish(event(i))
    if (i % 1000 === 999) await new Promise<void>((r) => setImmediate(r))
  }
  gc?.()
  const heapBytes = process.memoryUsage().heapUsed - before
  const dropped = source.dropped
  await first
  await it.return?.()
  source.close()
  return { heapBytes, dropped }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const runs: Record<string, { eventsPerSecond: number[]; heapBytes: number[]; dropped: number[] }> =
  {}
for (const v of VARIANTS) runs[v.name] = { eventsPerSecond: [], heapBytes: [], dropped: [] }
for (let round = 0; round < ROUNDS; round++)
  for (const v of round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
    runs[v.name]!.eventsPerSecond.push(await throughput(v))
    const slow = await slowSubscriber(v)
    runs[v.name]!.heapBytes.push(slow.heapBytes)
    runs[v.name]!.dropped.push(slow.dropped)
  }

const report = {
  bench: 'live-tail',
  node: process.version,
  rounds: ROUNDS,
  events: EVENTS,
  bufferSize: BUFFER,
  slowSubscriberEvents: SLOW_EVENTS,
  gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  results: Object.fromEntries(
    Object.entries(runs).map(([name, r]) => [
      name,
      {
        eventsPerCpuSecondMedian: Math.round(median(r.eventsPerSecond)),
        eventsPerCpuSecond: r.eventsPerSecond.map(Math.round),
        slowSubscriberHeapBytesMedian: median(r.heapBytes),
        slowSubscriberDropped: median(r.dropped),
      },
    ]),
  ),
}
const text = `${JSON.stringify(report, null, 2)}\n`
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/live-tail.json'), text)
process.stdout.write(text)
