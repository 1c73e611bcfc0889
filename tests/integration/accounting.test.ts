// Every batch is delivered or counted, through the real path: the collector's publisher → a
// real Kafka broker → the ingester → chDB → GraphQL collectorHealth. The test pauses the
// broker (SIGSTOP) under a publisher with a tiny queue so it has to drop batches, restarts the
// collector (a new instance), and writes a batch sequence with a hole and a redelivery by
// hand; every figure is checked against what the test published and what it finds stored.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Api, createApi } from '@ebbflow/api'
import { type CapturedEvent, createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, KafkaDeadLetters, KafkaIngester } from '@ebbflow/ingester'
import { bootTimeNs } from '@ebbflow/native'
import { v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import {
  brokerUnavailable,
  startBroker,
  type TestBroker,
  testPublisher,
} from '../support/kafka-broker.ts'

const skip = brokerUnavailable() ?? false
/** Events per batch: each publish() of this many closes exactly one batch. */
const E = 20
const NODE = `acct-${randomUUID().slice(0, 8)}`

interface Accounting {
  instanceId: string
  family: string
  batches: number
  storedBatches: number
  storedEvents: number
  gapBatches: number
  droppedBatches: number
  droppedEvents: number
  unaccounted: number
  gaps: { from: number; to: number }[]
}
interface Health {
  node: string
  gapBatches: number
  droppedBatches: number
  unaccounted: number
  eventsPerSecond: number
  drops: { family: string; reason: string; count: number }[]
  collectors: Accounting[]
}

/** One batch's execs: pids base+i*E … base+i*E+E-1, stamped now. */
function batchOf(base: number, i: number): CapturedEvent[] {
  const now = bootTimeNs()
  return Array.from({ length: E }, (_, k) => ({
    kind: 'exec' as const,
    bootNs: now + k,
    cgroupId: 1,
    pid: base + i * E + k,
    tgid: base + i * E + k,
    ppid: 1,
    uid: 0,
    gid: 0,
    pidnsIno: 1,
    mntnsIno: 1,
    comm: 'acct',
    parentComm: 'test',
    filename: '/usr/bin/acct-test',
    args: ['/usr/bin/acct-test', `--batch=${i}`, 'x'.repeat(200)],
    argsTotalBytes: 240,
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
    meta: { node: NODE },
  }))
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('accounting: gaps = counted drops (real Kafka, chDB, GraphQL)', {
  skip,
  timeout: 180_000,
}, () => {
  let broker: TestBroker
  let brokers: string[]
  let tmp: string
  let store: ChdbStore
  let api: Api
  let ingester: KafkaIngester
  let deadLetters: KafkaDeadLetters

  const health = async (): Promise<Health> => {
    const res = await api.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `query($node: String) { collectorHealth(node: $node) {
          node gapBatches droppedBatches unaccounted eventsPerSecond
          drops { family reason count }
          collectors { instanceId family batches storedBatches storedEvents gapBatches
                       droppedBatches droppedEvents unaccounted gaps { from to } } } }`,
        variables: { node: NODE },
      }),
    })
    const body = (await res.json()) as {
      data?: { collectorHealth: Health[] }
      errors?: unknown[]
    }
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    return body.data!.collectorHealth[0]!
  }
  const collector = async (instanceId: string) =>
    (await health())?.collectors.find((c) => c.instanceId === instanceId)

  /** Which of the test's batches (by index) have their execs in the store, counted by pid. */
  const storedBatchIndexes = async (base: number, batches: number) => {
    const rows = await store.query<{ b: string; n: string }>(
      `SELECT intDiv(pid - ${base}, ${E}) AS b, uniqExact(pid) AS n FROM ebbflow.process_events
       WHERE node = '${NODE}' AND pid >= ${base} AND pid < ${base + batches * E} GROUP BY b`,
    )
    for (const r of rows) assert.equal(Number(r.n), E, `batch ${r.b} stored whole`)
    return new Set(rows.map((r) => Number(r.b)))
  }

  before(async () => {
    broker = await startBroker()
    brokers = [broker.bootstrap]
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-acct-'))
    store = await ChdbStore.open(tmp)
    await migrate(store)
    const logger = createLogger('test', 'warn')
    const metrics = new IngestMetrics()
    deadLetters = new KafkaDeadLetters(brokers)
    const ingestor = new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' })
    ingester = new KafkaIngester(
      {
        brokers,
        groupId: `acct-${randomUUID()}`,
        topics: Object.values(TOPICS),
        maxWaitMs: 100,
      },
      ingestor,
      metrics,
      logger,
    )
    await ingester.start()
    api = createApi({ store, tokens: {}, open: true, logger })
  })

  after(async () => {
    await ingester?.stop()
    await deadLetters?.close()
    await store?.close()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('a publisher that drops batches while the broker is paused counts every one', async () => {
    assert.ok(broker.dir, 'the local broker (its pid is needed to pause it)')
    const brokerPid = Number(readFileSync(join(broker.dir, 'kafka.pid'), 'utf8').trim())
    const base = 1_000_000
    const { publisher, options } = testPublisher(
      brokers,
      { node: NODE, batchMaxEvents: E, lingerMs: 60_000, queueBudgetBytes: 24 * 1024 },
      { requestTimeoutMs: 1500, connectionTimeoutMs: 1000 },
    )
    const A = options.instanceId!
    let next = 0
    const publishBatches = (n: number) => {
      for (let k = 0; k < n; k++) publisher.publish(batchOf(base, next++))
    }
    // One at a time while the broker is up: the tiny queue holds a handful of batches only.
    for (let i = 0; i < 5; i++) {
      publishBatches(1)
      assert.equal(await publisher.drain(30_000), true, 'first batches published')
    }
    assert.equal(publisher.stats().droppedBatches, 0)
    const beforePause = next
    process.kill(brokerPid, 'SIGSTOP')
    try {
      publishBatches(30)
      // The queue holds a few batches; the rest were dropped at once, oldest first.
      assert.ok(
        publisher.stats().droppedBatches >= 10,
        `dropped ${publisher.stats().droppedBatches}`,
      )
      await new Promise((r) => setTimeout(r, 2000))
    } finally {
      process.kill(brokerPid, 'SIGCONT')
    }
    assert.equal(await publisher.drain(60_000), true, 'queue drained after the pause')
    const pausedUpTo = next
    for (let i = 0; i < 3; i++) {
      publishBatches(1)
      assert.equal(await publisher.drain(30_000), true, 'last batches published')
    }
    const stats = await publisher.close(30_000)
    assert.equal(stats.queuedBatches, 0)

    // Wait until the last batch's execs and its ledger row are stored.
    await waitFor('the last batch of A', async () => {
      const stored = await storedBatchIndexes(base, next)
      const c = await collector(A)
      return stored.has(next - 1) && c !== undefined && c.storedEvents === stored.size * E
    })
    const stored = await storedBatchIndexes(base, next)
    const missing = Array.from({ length: next }, (_, i) => i).filter((i) => !stored.has(i))
    // What the test forced: batches lost during the pause, none before it or after it.
    assert.ok(missing.length >= 10, `missing ${missing.length}`)
    assert.ok(
      missing.every((i) => i >= beforePause && i < pausedUpTo),
      `missing ${missing} of ${next}, paused ${beforePause}..${pausedUpTo - 1}`,
    )
    assert.equal(missing.length, stats.droppedBatches, 'lost = the publisher’s own count')

    const a = (await collector(A))!
    assert.equal(a.family, 'exec')
    assert.equal(a.gapBatches, missing.length)
    assert.equal(a.droppedBatches, missing.length)
    assert.equal(a.droppedEvents, missing.length * E)
    assert.equal(a.unaccounted, 0)
    assert.equal(a.storedEvents, next * E - missing.length * E)
    // The test's batches before the drops-only report are sequences 0.. in publish order, so
    // the missing ranges are the runs of missing batch indexes.
    const runs: { from: number; to: number }[] = []
    for (const i of missing) {
      const last = runs.at(-1)
      if (last && last.to === i - 1) last.to = i
      else runs.push({ from: i, to: i })
    }
    assert.deepEqual(a.gaps, runs)
    const h = await health()
    assert.ok(
      h.drops.some(
        (d) => d.family === 'exec' && d.reason === 'queue_full' && d.count === missing.length * E,
      ),
      JSON.stringify(h.drops),
    )
    assert.ok(h.eventsPerSecond > 0)
    figures.publisherA = {
      published: next,
      dropped: missing.length,
      gaps: a.gapBatches,
      unaccounted: a.unaccounted,
    }

    // A restarted collector is a new instance with its own sequence from 0: nothing missing.
    const b = testPublisher(brokers, { node: NODE, batchMaxEvents: E, lingerMs: 60_000 })
    const baseB = 2_000_000
    for (let i = 0; i < 4; i++) b.publisher.publish(batchOf(baseB, i))
    await b.publisher.close(30_000)
    const B = b.options.instanceId!
    await waitFor('collector B', async () => (await collector(B))?.storedBatches === 4)
    const cb = (await collector(B))!
    assert.deepEqual(
      [cb.batches, cb.storedEvents, cb.gapBatches, cb.droppedBatches, cb.unaccounted, cb.gaps],
      [4, 4 * E, 0, 0, 0, []],
    )
  })

  it('a batch lost without a count shows as unaccounted; a redelivered one counts once', async () => {
    const C = randomUUID()
    const topic = TOPICS.exec
    const kafka = new Kafka({ clientId: 'acct-test', brokers, logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    // protobufjs's encoder takes a uint64 as a decimal string too (its types say number | Long).
    const nowNs = (BigInt(Date.now()) * 1_000_000n).toString() as unknown as number
    const batch = (sequence: number) =>
      Buffer.from(
        v1.EventBatch.encode({
          node: NODE,
          collectorInstanceId: C,
          bootId: 'acct-boot',
          sequence,
          batchId: `${C}-${topic}-${sequence}`,
          firstTimeNs: nowNs,
          lastTimeNs: nowNs,
          exec: [
            {
              timeNs: nowNs,
              task: { pid: 4242, tgid: 4242 },
              filename: '/usr/bin/acct-by-hand',
              meta: { node: NODE },
            },
          ],
        }).finish(),
      )
    // Sequence 1 never sent and not reported; sequence 2 delivered twice.
    for (const s of [0, 2, 2, 3])
      await producer.send({ topic, messages: [{ key: NODE, value: batch(s) }] })
    await producer.disconnect()
    await waitFor('collector C', async () => (await collector(C))?.batches === 4).catch(
      async (err) => {
        throw new Error(`${err.message}: ${JSON.stringify(await health())}`)
      },
    )
    const c = (await collector(C))!
    assert.deepEqual(
      [c.batches, c.storedBatches, c.storedEvents, c.gapBatches, c.droppedBatches, c.unaccounted],
      [4, 3, 3, 1, 0, 1],
    )
    assert.deepEqual(c.gaps, [{ from: 1, to: 1 }])
    const h = await health()
    assert.equal(h.unaccounted, 1, 'the node sums its collectors: only C lost a batch silently')
    assert.equal(h.collectors.length, 3)
  })
})

const figures: Record<string, unknown> = {}
after(() => {
  if (Object.keys(figures).length > 0)
    process.stdout.write(`# figures ${JSON.stringify(figures)}\n`)
})
