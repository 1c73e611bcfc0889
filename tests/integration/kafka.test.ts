// The publisher against a real Kafka broker (infra/kafka, KRaft, from its jars): round trips
// of synthetic and real captured events, a broker that is down when the collector starts, and
// the memory budget's drop accounting.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import {
  type DecodedBatch,
  decodeEventBatch,
  familyOf,
  KafkaTransport,
  loadCollectorConfig,
  Publisher,
  TOPICS,
  type WallClock,
} from '@ebbflow/collector'
import type { CapturedEvent, CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { ensureTopics } from '@ebbflow/common/kafka'
import kafkajs, { Kafka, logLevel } from 'kafkajs'
import { isRoot, startCapture } from '../support/capture.ts'
import { freePort, logCodecs, testPublisher as publisher } from '../support/kafka-broker.ts'
import { syntheticExec } from '../support/synthetic-exec.ts'
import { onClock } from '../support/wire-read.ts'
import { syntheticEvents } from './events-fixture.ts'

const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')
const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

interface Consumed {
  topic: string
  key: string
  batch: DecodedBatch
  /** The publisher's clock, to put the batch's events back on it (`bootNs`). */
  clock: WallClock
}

/**
 * Reads every topic from the beginning until `done` holds for this instance's batches. A batch
 * whose id was already seen is a redelivery (a retry after a broker outage can come from a new
 * producer id, which the broker cannot deduplicate): it must repeat the first copy exactly and
 * is dropped, as a consumer downstream drops it.
 */
async function consume(
  brokers: string[],
  instanceId: string,
  clock: WallClock,
  done: (batches: Consumed[]) => boolean,
  timeoutMs = 30_000,
): Promise<Consumed[]> {
  const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `test-${randomUUID()}` })
  const batches: Consumed[] = []
  const seen = new Map<string, DecodedBatch>()
  await consumer.connect()
  try {
    // A topic no test published to (the file family's) would fail the subscription on a
    // broker that just started: create them all first, as the ingester does.
    const admin = kafka.admin()
    await admin.connect()
    await ensureTopics(admin, Object.values(TOPICS)).finally(() => admin.disconnect())
    await consumer.subscribe({ topics: Object.values(TOPICS), fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out; consumed ${batches.length} batches`)),
        timeoutMs,
      )
      consumer
        .run({
          eachMessage: async ({ topic, message }) => {
            const batch = decodeEventBatch(message.value!)
            if (batch.collectorInstanceId !== instanceId) return
            const first = seen.get(batch.batchId)
            if (first) {
              if (!isDeepStrictEqual(batch, first)) {
                clearTimeout(timer)
                reject(new Error(`redelivered batch ${batch.batchId} differs from its first copy`))
              }
              return
            }
            seen.set(batch.batchId, batch)
            batches.push({ topic, key: message.key?.toString() ?? '', batch, clock })
            if (done(batches)) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return batches
}

/** Events back in publish order, kind by kind (a batch keeps each kind's order). */
function byKind(batches: Consumed[]): Map<string, CapturedEvent[]> {
  const out = new Map<string, CapturedEvent[]>()
  const order = [...batches].sort(
    (a, b) => a.topic.localeCompare(b.topic) || a.batch.sequence - b.batch.sequence,
  )
  for (const { batch, clock } of order) {
    for (const list of [
      batch.exec,
      batch.exit,
      batch.fork,
      batch.tcp,
      batch.traffic,
      batch.syscall,
      batch.syscallCount,
      batch.drops,
    ]) {
      for (const d of list) {
        const e = onClock(d, clock)
        const k = e.kind === 'drops' ? `drops:${(e as { reason: string }).reason}` : e.kind
        const l = out.get(k) ?? []
        if (l.length === 0) out.set(k, l)
        l.push(e)
      }
    }
  }
  return out
}

function expectedByKind(events: CapturedEvent[]): Map<string, CapturedEvent[]> {
  const out = new Map<string, CapturedEvent[]>()
  for (const e of events) {
    const k = e.kind === 'drops' ? `drops:${e.reason}` : e.kind
    const l = out.get(k) ?? []
    if (l.length === 0) out.set(k, l)
    l.push(e)
  }
  return out
}

const eventCount = (batches: Consumed[]) =>
  batches.reduce(
    (n, { batch: b }) =>
      n +
      b.exec.length +
      b.exit.length +
      b.fork.length +
      b.tcp.length +
      b.traffic.length +
      b.syscall.length +
      b.syscallCount.length +
      b.drops.filter((d) => d.reason !== 'queue_full').length,
    0,
  )

/**
 * Closes publisher `p` and checks it published every one of `events`, then reads its batches
 * back: the same events, kind by kind, in order. Returns the publisher's stats and the batches.
 */
async function closedAndReadBack(
  brokers: string[],
  p: Publisher,
  options: { instanceId?: string; clock: WallClock },
  events: CapturedEvent[],
) {
  const stats = await p.close()
  assert.equal(stats.publishedEvents, events.length)
  const received = await consume(
    brokers,
    options.instanceId!,
    options.clock,
    (b) => eventCount(b) >= events.length,
  )
  assert.deepEqual(byKind(received), expectedByKind(events))
  return { stats, received }
}

const queueFullCount = (batches: Consumed[]) =>
  batches.reduce(
    (n, { batch }) =>
      n + batch.drops.filter((d) => d.reason === 'queue_full').reduce((m, d) => m + d.count, 0),
    0,
  )

describe('Kafka publisher (real broker)', { skip, timeout: 300_000 }, () => {
  let dir: string
  let port: number
  let brokers: string[]

  before(async () => {
    execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-kafka-'))
    port = await freePort()
    brokers = [`127.0.0.1:${port}`]
  })

  after(() => {
    if (dir) {
      spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('broker down at start: capture goes on, everything held arrives once it is up; a tiny budget counts its drops', {
    timeout: 60_000,
  }, async () => {
    const events = syntheticEvents(3000)
    const big = publisher(brokers)
    const tiny = publisher(brokers, { queueBudgetBytes: 8 * 1024, batchMaxEvents: 100 })
    // publish() must return at once, broker or not.
    const t0 = performance.now()
    big.publisher.publish(events)
    tiny.publisher.publish(events)
    assert.ok(performance.now() - t0 < 1000, 'publishing does not wait for the broker')
    // Wait for what is asserted below (sends tried and failed, batches held, the tiny budget
    // dropping), with a deadline, instead of a fixed sleep.
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      const b = big.publisher.stats()
      const t = tiny.publisher.stats()
      const tinyDrops = Object.values(t.droppedEvents).reduce((a, c) => a + c, 0)
      if (b.failedSends > 0 && b.queuedBatches > 0 && tinyDrops > 0) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const held = big.publisher.stats()
    assert.equal(held.connected, false)
    assert.ok(held.failedSends > 0, 'sends were tried and failed')
    assert.ok(held.queuedBatches > 0)
    assert.deepEqual(held.droppedEvents, { exec: 0, net: 0, syscall: 0, file: 0 })
    const tinyHeld = tiny.publisher.stats()
    const tinyDropped = Object.values(tinyHeld.droppedEvents).reduce((a, b) => a + b, 0)
    assert.ok(tinyDropped > 0, 'past the budget, drops are counted')
    assert.ok(tinyHeld.queuedBytes <= 8 * 1024 + 64 * 1024, 'the queue stays near its budget')

    const out = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    assert.equal(out.trim(), brokers[0])

    assert.equal(await big.publisher.drain(30_000), true, 'the held batches were published')
    assert.equal(await tiny.publisher.drain(30_000), true)
    const bigStats = await big.publisher.close()
    assert.equal(bigStats.publishedEvents, events.length)

    const received = await consume(
      brokers,
      big.options.instanceId!,
      big.options.clock,
      (b) => eventCount(b) >= events.length,
    )
    assert.deepEqual(byKind(received), expectedByKind(events), 'nothing lost, in order')

    // Tiny budget: what arrived plus what the queue_full records report is everything.
    const tinyStats = await tiny.publisher.close()
    const tinyDroppedTotal = Object.values(tinyStats.droppedEvents).reduce((a, b) => a + b, 0)
    const tinyReceived = await consume(
      brokers,
      tiny.options.instanceId!,
      tiny.options.clock,
      // The queue_full records may come in a batch of their own, after the last events.
      (b) => eventCount(b) >= tinyStats.publishedEvents && queueFullCount(b) >= tinyDroppedTotal,
    )
    const queueDrops = new Map<Family, number>()
    for (const { batch } of tinyReceived)
      for (const d of batch.drops)
        if (d.reason === 'queue_full')
          queueDrops.set(d.family, (queueDrops.get(d.family) ?? 0) + d.count)
    for (const f of ['exec', 'net', 'syscall'] as const)
      assert.equal(
        queueDrops.get(f) ?? 0,
        tinyStats.droppedEvents[f],
        `${f}: drops reported on the wire`,
      )
    assert.equal(eventCount(tinyReceived) + tinyDroppedTotal, events.length)
  })

  it('round trip: 3,000 events of every kind decode identical, in order, keyed by node', {
    timeout: 60_000,
  }, async () => {
    const events = syntheticEvents(3000, 2 ** 52)
    const { publisher: p, options } = publisher(brokers)
    p.publish(events)
    const { stats, received } = await closedAndReadBack(brokers, p, options, events)
    assert.equal(stats.droppedBatches, 0)
    for (const r of received) {
      assert.equal(r.key, 'node-a')
      assert.equal(r.batch.node, 'node-a')
      assert.equal(r.batch.bootId.length, 36)
      const families = new Set(
        [...r.batch.exec, ...r.batch.tcp, ...r.batch.syscall, ...r.batch.drops].map((e) =>
          familyOf(e),
        ),
      )
      for (const f of families) assert.equal(TOPICS[f], r.topic, 'each family on its topic')
    }
    // Sequences per topic without gaps, and batch ids unique.
    for (const topic of Object.values(TOPICS)) {
      const seqs = received.filter((r) => r.topic === topic).map((r) => r.batch.sequence)
      assert.deepEqual(
        seqs.sort((a, b) => a - b),
        seqs.map((_, i) => i),
      )
    }
    assert.equal(new Set(received.map((r) => r.batch.batchId)).size, received.length)
    // The time range bounds the batch's events.
    for (const { batch: b } of received) {
      const times = [...b.exec, ...b.exit, ...b.fork, ...b.tcp, ...b.traffic, ...b.syscall]
        .concat(b.syscallCount as never[], b.drops as never[])
        .map((e) => e.timeNs)
        .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
      assert.equal(b.firstTimeNs, times[0])
      assert.equal(b.lastTimeNs, times.at(-1))
    }
  })

  it('ensureTopics returns once every topic it created has a leader, also when another client created one meanwhile', {
    timeout: 60_000,
  }, async () => {
    const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    try {
      const names = () => ['exec', 'net', 'syscall', 'file'].map((f) => `race-${randomUUID()}.${f}`)
      for (let round = 0; round < 5; round++) {
        const topics = names()
        // The collector's producer creates its topic on first publish, between the reader's
        // list of topics and its create: kafkajs then skips its own wait for leaders.
        await admin.createTopics({ topics: [{ topic: topics[0]! }] })
        let listed = 0
        const stale = {
          listTopics: async () => {
            listed++
            return []
          },
          createTopics: admin.createTopics.bind(admin),
          fetchTopicMetadata: admin.fetchTopicMetadata.bind(admin),
        }
        assert.equal(
          await admin.createTopics({ topics: topics.map((topic) => ({ topic })) }),
          false,
          'kafkajs reports nothing created when one of the topics existed',
        )
        const fresh = names()
        await admin.createTopics({ topics: [{ topic: fresh[0]! }] })
        assert.deepEqual(await ensureTopics(stale, fresh), fresh)
        assert.equal(listed, 1)
        // A client of its own, as the ingester's consumer is: it sees each topic with a leader.
        const other = kafka.admin()
        await other.connect()
        try {
          const { topics: found } = await other.fetchTopicMetadata({ topics: fresh })
          assert.deepEqual(found.map((t) => t.name).sort(), [...fresh].sort())
          for (const t of found) {
            assert.ok(t.partitions.length > 0, t.name)
            for (const part of t.partitions) assert.ok(part.leader >= 0, `${t.name} has a leader`)
          }
        } finally {
          await other.disconnect()
        }
      }
    } finally {
      await admin.disconnect()
    }
  })

  it('zstd by default, gzip when asked (EBBFLOW_KAFKA_COMPRESSION=gzip): the broker holds both and a reader decodes each identical', {
    timeout: 60_000,
  }, async () => {
    // The broker's log is shared by this file's tests: codecs are told apart by what each
    // publisher writes to a log that held neither before.
    const before = logCodecs(join(dir, 'data'), Object.values(TOPICS))
    for (const compression of [undefined, 'gzip'] as const) {
      const events = syntheticEvents(1000, 2 ** 40)
      const { publisher: p, options } = publisher(brokers, {}, compression ? { compression } : {})
      p.publish(events)
      // Read with kafkajs as the ingester and the API's live tail read (zstd registered).
      await closedAndReadBack(brokers, p, options, events)
    }
    // The record batches' codecs, from the broker's own log (attributes & 7: gzip 1, zstd 4).
    const codecs = logCodecs(join(dir, 'data'), Object.values(TOPICS))
    assert.ok(codecs.has(4), `codecs in the log: ${[...codecs].join(', ')}`)
    assert.ok(codecs.has(1), `codecs in the log: ${[...codecs].join(', ')}`)
    assert.ok(!before.has(1), `gzip in the log before: ${[...before].join(', ')}`)
    // The collector's own default, as `ebbflow collect` reads it.
    assert.equal(loadCollectorConfig({}, {}).kafkaCompression, 'zstd')
  })

  it('compressed, several batches go in one request; once the broker refuses one as too large, each request carries one batch and nothing is lost', {
    timeout: 60_000,
  }, async () => {
    // The exec topic takes record batches of at most 150,000 bytes (compressed) for this case.
    const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    const limit = (value: string) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: TOPICS.exec,
            configEntries: [{ name: 'max.message.bytes', value }],
          },
        ],
      })
    try {
      await ensureTopics(admin, [TOPICS.exec])
      await limit('150000')
      // Random argv barely compresses: a 100 KiB batch stays under the limit alone, ten of
      // them in one request (the transport's 4 MiB) do not.
      const events: CapturedEvent[] = Array.from({ length: 2500 }, (_, i) =>
        syntheticExec(i, randomBytes(300).toString('base64')),
      )
      const transport = new KafkaTransport({ brokers, compression: 'gzip' })
      assert.equal(transport.requestMaxBytes, 4 << 20)
      const { options } = publisher(brokers, { batchMaxBytes: 100 * 1024, batchMaxEvents: 10_000 })
      const p = new Publisher(transport, options)
      p.publish(events)
      const stats = await p.close(30_000)
      assert.equal(stats.publishedEvents, events.length)
      assert.ok(stats.failedSends >= 1, 'the broker refused no request')
      assert.equal(transport.requestMaxBytes, 0)
      const received = await consume(
        brokers,
        options.instanceId!,
        options.clock,
        (b) => eventCount(b) >= events.length,
      )
      const args = (list: CapturedEvent[] | undefined) =>
        (list ?? []).map((e) => (e.kind === 'exec' ? e.args[1] : undefined))
      assert.deepEqual(args(byKind(received).get('exec')), args(events))
    } finally {
      await limit('1048588').catch(() => {})
      await admin.disconnect()
    }
  })

  it('an idle connected producer arms no timers (kafkajs 2.2.4 looped every 1 ms per connection; patches/)', {
    timeout: 60_000,
  }, async () => {
    const kafka = new Kafka({ clientId: 'idle', brokers, logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const realSetTimeout = globalThis.setTimeout
    try {
      // Its own topic: the other tests read every ebbflow topic from the beginning.
      const topic = `idle-probe-${randomUUID()}`
      const admin = kafka.admin()
      await admin.connect()
      await ensureTopics(admin, [topic]).finally(() => admin.disconnect())
      await producer.send({ topic, messages: [{ value: 'idle-probe' }] })
      // Every request goes through the connection's request queue; the unpatched queue re-armed
      // a negative (so 1 ms) timer after each check with nothing pending, forever: ~900 a second
      // here, and about 5 % of a core for a collector at rest.
      let armed = 0
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        armed++
        return realSetTimeout(...args)
      }) as typeof setTimeout
      await new Promise((r) => realSetTimeout(r, 2_000))
      globalThis.setTimeout = realSetTimeout
      assert.ok(armed < 20, `${armed} timers armed in 2 s by an idle producer`)
    } finally {
      globalThis.setTimeout = realSetTimeout
      await producer.disconnect()
    }
  })

  it('broker killed (kill -9) and restarted mid-stream: nothing lost, redelivery only as repeated batch ids', {
    timeout: 90_000,
  }, async () => {
    const events = syntheticEvents(6000, 2 ** 50)
    const { publisher: p, options } = publisher(brokers, { batchMaxEvents: 100 })
    const pid = Number(readFileSync(join(dir, 'kafka.pid'), 'utf8').trim())
    let killed = false
    for (let i = 0; i < events.length; i += 100) {
      p.publish(events.slice(i, i + 100))
      await new Promise((r) => setTimeout(r, 25))
      if (!killed && i >= 2000) {
        process.kill(pid, 'SIGKILL')
        killed = true
      }
    }
    assert.ok(p.stats().queuedBatches > 0, 'batches held while the broker is dead')
    execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    assert.equal(await p.drain(40_000), true)
    const stats = await p.close()
    assert.equal(stats.publishedEvents, events.length)
    assert.ok(stats.failedSends > 0)
    const received = await consume(brokers, options.instanceId!, options.clock, (b) => {
      const unique = new Map(b.map((r) => [r.batch.batchId, r]))
      return eventCount([...unique.values()]) >= events.length
    })
    const unique = new Map<string, Consumed>()
    for (const r of received) {
      const seen = unique.get(r.batch.batchId)
      if (seen) assert.deepEqual(r.batch, seen.batch, 'a redelivered batch is the same batch')
      else unique.set(r.batch.batchId, r)
    }
    assert.deepEqual(byKind([...unique.values()]), expectedByKind(events))
  })

  it('round trip of real captured exec events (the publisher as the capture sink)', {
    timeout: 60_000,
    skip: isRoot() ? false : 'needs root to load BPF programs',
  }, async () => {
    const { publisher: p, options } = publisher(brokers)
    const seen: CapturedEvent[] = []
    const run = startCapture({ families: 'exec' })
    // Tee: what the capture hands over is both kept and published, batch by batch.
    const sink = run.sink
    const records = sink.records.bind(sink)
    const counters = sink.counters.bind(sink)
    sink.records = (events: RecordEvent[], family: Family) => {
      records(events, family)
      seen.push(...events)
      p.records(events, family)
    }
    sink.counters = (events: CounterEvent[]) => {
      counters(events)
      seen.push(...events)
      p.counters(events)
    }
    try {
      const marker = `ebbflow-kafka-${randomUUID()}`
      for (let i = 0; i < 20; i++) spawnSync('/bin/sh', ['-c', 'exit 0', marker])
      await sink.waitFor(
        (es) => es.filter((e) => e.kind === 'exec' && e.args.includes(marker)).length === 20,
        10_000,
        '20 execs',
      )
    } finally {
      await run.capture.stop()
    }
    assert.ok(seen.length >= 40)
    await closedAndReadBack(brokers, p, options, seen)
  })
})
