// A slow store is back-pressure, a failing store is a pause. Through a real broker and chDB:
// with every insert slower than the slow-insert threshold and every fetch about one block, the
// ingester stores every published exec (by pid) within a deadline and never pauses the
// partition (it used to pause it for as long as each slow insert took, from inside eachBatch,
// resumed from a timer: in one run each, that took this test ~13 s against ~6.5 s); with a store that
// throws, the partition is held, nothing past the block is committed, and the block is stored
// once the store recovers. And a store longer than the group's session timeout (a long
// bisection, a slow ClickHouse) must not get the member dropped and its block stored again by
// whoever takes the partition over: two members of one group, one partition each, every store
// slowed past the 6 s session timeout; each block is stored once (the test counts the store calls
// per block token, which ClickHouse's deduplication would otherwise hide, and the rows by pid),
// nobody rejoins the group, and the heartbeats sent during the stores are counted.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, KafkaIngester, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type TestBroker } from '../support/kafka-broker.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

const t0 = BigInt(Date.now() - 60_000) * 1_000_000n
const at = (i: number) => Long.fromString((t0 + BigInt(i)).toString(), true)

/**
 * `count` records of `per` execs each, pids from `first`, as a collector writes them; their
 * sequence numbers (and batch ids) from `from`.
 */
function batches(node: string, first: number, count: number, per: number, from = 0): Buffer[] {
  return Array.from({ length: count }, (_, k) => {
    const r = from + k
    return Buffer.from(
      v1.EventBatch.encode({
        node,
        bootId: `boot-${node}`,
        batchId: `${node}-${r}`,
        sequence: r,
        firstTimeNs: at(0),
        lastTimeNs: at(per),
        exec: Array.from({ length: per }, (_, i) => {
          const pid = first + k * per + i
          return { timeNs: at(i), task: { pid, tgid: pid, comm: 'slow' }, filename: '/bin/slow' }
        }),
      }).finish(),
    )
  })
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** The least session timeout a broker accepts (group.min.session.timeout.ms). */
const SESSION_MS = 6000
/** Every store takes this much longer than it would: past the session timeout. */
const STORE_MS = 8000
const PER_PARTITION = 5
const EXECS = 10

const counter = async (m: IngestMetrics, name: string) => {
  const text = await m.registry.getSingleMetricAsString(name)
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
}

describe('ingester with a slow or failing store (real Kafka, chDB)', {
  skip,
  timeout: 180_000,
}, () => {
  let broker: TestBroker
  let brokers: string[]
  let kafka: Kafka
  let tmp: string
  let store: ChdbStore

  before(async () => {
    broker = await startBroker()
    brokers = [broker.bootstrap]
    kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-slow-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
  })
  after(async () => {
    await store?.close()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  async function publish(topic: string, values: Buffer[]) {
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: values.map((value) => ({ value })) })
    await producer.disconnect()
  }

  async function pidsOf(node: string): Promise<number[]> {
    const rows = await store.query<{ pid: number }>(
      `SELECT pid FROM ebbflow.process_events WHERE node = '${node}' AND kind = 'exec' ORDER BY pid`,
    )
    return rows.map((r) => Number(r.pid))
  }

  /** An ingestor whose inserts take `delayMs` more, or throw while `failing()` says so. */
  function ingestorFor(metrics: IngestMetrics, delayMs: number, failing = () => false) {
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics,
      logger: createLogger('test', 'silent'),
      source: 'slow-store',
    })
    const inserts = { count: 0, failed: 0 }
    const real = ingestor.ingestBlock.bind(ingestor)
    ingestor.ingestBlock = async (...args: Parameters<Ingestor['ingestBlock']>) => {
      inserts.count++
      await new Promise((r) => setTimeout(r, delayMs))
      if (failing()) {
        inserts.failed++
        throw Object.assign(new Error('store unavailable (test)'), { retriable: true })
      }
      return real(...args)
    }
    return { ingestor, inserts }
  }

  it('keeps fetching while every insert is slower than the threshold', async () => {
    // 40 records of 10 execs, cut into blocks of 5 records: 8 slow inserts.
    const node = 'node-slow'
    const topic = TOPICS.exec
    const metrics = new IngestMetrics()
    const { ingestor, inserts } = ingestorFor(metrics, 30)
    const records = batches(node, 10_000, 40, 10)
    const ingester = new KafkaIngester(
      {
        brokers,
        groupId: 'slow-store',
        topics: [topic],
        maxRows: 50,
        // A fetch brings about one block: every block is a fetch after a slow insert.
        maxBytes: records[0]!.length * 5 + 512,
        maxWaitMs: 100,
        minBytes: 1,
        slowInsertMs: 1,
      },
      ingestor,
      metrics,
      createLogger('test', 'silent'),
    )
    await ingester.start()
    try {
      await publish(topic, records)
      const want = Array.from({ length: 400 }, (_, i) => 10_000 + i)
      let pausedSeen = false
      await waitFor(
        'every exec stored',
        async () => {
          const g = await metrics.registry.getSingleMetricAsString(
            'ebbflow_ingest_paused_partitions',
          )
          if (/ebbflow_ingest_paused_partitions [1-9]/.test(g)) pausedSeen = true
          return (await pidsOf(node)).length >= 400
        },
        30_000,
      )
      assert.equal(pausedSeen, false, 'a slow insert paused the partition')
      assert.deepEqual(await pidsOf(node), want)
      assert.ok(inserts.count >= 8, `${inserts.count} inserts`)
    } finally {
      await ingester.stop()
    }
  })

  it('pauses on a failing store, commits nothing past the block, stores it on recovery', async () => {
    const node = 'node-fail'
    // The same topic: the slow test's 40 records come first, then these 10.
    const topic = TOPICS.exec
    let failing = true
    const metrics = new IngestMetrics()
    const { ingestor, inserts } = ingestorFor(metrics, 0, () => failing)
    const groupId = 'failing-store'
    const ingester = new KafkaIngester(
      { brokers, groupId, topics: [topic], maxWaitMs: 100, minBytes: 1, slowInsertMs: 1 },
      ingestor,
      metrics,
      createLogger('test', 'silent'),
    )
    await publish(topic, batches(node, 20_000, 10, 10))
    await ingester.start()
    const admin = kafka.admin()
    await admin.connect()
    try {
      await waitFor('three failed inserts', async () => inserts.failed >= 3, 15_000)
      const paused = await metrics.registry.getSingleMetricAsString(
        'ebbflow_ingest_paused_partitions',
      )
      assert.match(paused, /ebbflow_ingest_paused_partitions 1/)
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      for (const p of offsets!.partitions)
        assert.ok(Number(p.offset) <= 0, `partition ${p.partition} committed ${p.offset}`)
      assert.deepEqual(await pidsOf(node), [])

      failing = false
      const want = Array.from({ length: 100 }, (_, i) => 20_000 + i)
      await waitFor('the block stored', async () => (await pidsOf(node)).length >= 100, 15_000)
      assert.deepEqual(await pidsOf(node), want)
      await waitFor(
        'the offset committed',
        async () => {
          const [o] = await admin.fetchOffsets({ groupId, topics: [topic] })
          return o!.partitions.some((p) => Number(p.offset) === 50)
        },
        10_000,
      )
    } finally {
      await admin.disconnect()
      await ingester.stop()
    }
  })

  it('two members, every store past the session timeout: each block stored once, no rebalance', async () => {
    const node = 'node-long-store'
    // A topic of its own: the tests above made the exec topic with one partition.
    const topic = TOPICS.syscall
    const groupId = 'long-store'
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 }] })

    /** Store calls per block token, counted when a store starts. */
    const calls = new Map<string, number>()
    const member = (name: string) => {
      const metrics = new IngestMetrics()
      const ingestor = new Ingestor({
        store,
        deadLetters: new StoreDeadLetters(store),
        metrics,
        logger: createLogger('test', 'silent'),
        source: 'long-store',
      })
      const real = ingestor.ingestBlock.bind(ingestor)
      ingestor.ingestBlock = async (...args: Parameters<Ingestor['ingestBlock']>) => {
        const token = args[1]
        calls.set(token, (calls.get(token) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, STORE_MS))
        return real(...args)
      }
      const ingester = new KafkaIngester(
        {
          brokers,
          groupId,
          topics: [topic],
          maxWaitMs: 100,
          minBytes: 1,
          sessionTimeoutMs: SESSION_MS,
          concurrency: 1,
          clientId: name,
        },
        ingestor,
        metrics,
        createLogger('test', 'silent'),
      )
      return { name, metrics, ingester }
    }
    const a = member('a')
    const b = member('b')
    try {
      await a.ingester.start()
      await waitFor(
        'a joined',
        async () => (await counter(a.metrics, 'ebbflow_ingest_group_joins_total')) >= 1,
        30_000,
      )
      await b.ingester.start()
      // b's arrival is a rebalance a takes part in (a rejoins once): then one partition each.
      await waitFor(
        'both members in the group',
        async () =>
          (await counter(a.metrics, 'ebbflow_ingest_group_joins_total')) >= 2 &&
          (await counter(b.metrics, 'ebbflow_ingest_group_joins_total')) >= 1,
        30_000,
      )
      const joins = async () => [
        await counter(a.metrics, 'ebbflow_ingest_group_joins_total'),
        await counter(b.metrics, 'ebbflow_ingest_group_joins_total'),
      ]
      const joinsBefore = await joins()

      const producer = kafka.producer()
      await producer.connect()
      const want: number[] = []
      for (const partition of [0, 1]) {
        const first = 100_000 * (partition + 1)
        for (let i = 0; i < PER_PARTITION * EXECS; i++) want.push(first + i)
        const values = batches(node, first, PER_PARTITION, EXECS, partition * PER_PARTITION)
        await producer.send({ topic, messages: values.map((value) => ({ partition, value })) })
      }
      await producer.disconnect()
      const beatsBefore = [
        await counter(a.metrics, 'ebbflow_ingest_heartbeats_total'),
        await counter(b.metrics, 'ebbflow_ingest_heartbeats_total'),
      ]
      await waitFor(
        'both partitions committed to their end',
        async () => {
          const [o] = await admin.fetchOffsets({ groupId, topics: [topic] })
          return o!.partitions.every((p) => Number(p.offset) === PER_PARTITION)
        },
        STORE_MS * 4 + 20_000,
      ).catch(async (err) => {
        const state = {
          calls: Object.fromEntries(calls),
          joins: await joins(),
          heartbeats: [
            await counter(a.metrics, 'ebbflow_ingest_heartbeats_total'),
            await counter(b.metrics, 'ebbflow_ingest_heartbeats_total'),
          ],
        }
        throw new Error(`${(err as Error).message}: ${JSON.stringify(state)}`)
      })
      const beats = [
        (await counter(a.metrics, 'ebbflow_ingest_heartbeats_total')) - beatsBefore[0]!,
        (await counter(b.metrics, 'ebbflow_ingest_heartbeats_total')) - beatsBefore[1]!,
      ]

      const twice = [...calls].filter(([, n]) => n > 1)
      assert.deepEqual(twice, [], 'a block was stored again (its member was dropped)')
      assert.deepEqual(await joins(), joinsBefore, 'a member rejoined the group: a rebalance')
      const rows = await store.query<{ pid: number }>(
        `SELECT pid FROM ebbflow.process_events WHERE node = '${node}' AND kind = 'exec' ORDER BY pid`,
      )
      assert.deepEqual(
        rows.map((r) => Number(r.pid)),
        want.sort((x, y) => x - y),
      )
      // A store of STORE_MS against a session of SESSION_MS needs at least one heartbeat inside.
      for (const n of beats) assert.ok(n >= 1, `heartbeats during the stores: ${beats.join(', ')}`)
      process.stdout.write(
        `# long-store ${JSON.stringify({ storeMs: STORE_MS, sessionMs: SESSION_MS, calls: calls.size, heartbeats: beats })}\n`,
      )
    } finally {
      await admin.disconnect()
      await Promise.all([a.ingester.stop(), b.ingester.stop()])
    }
  })
})
