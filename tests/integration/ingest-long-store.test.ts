// A store longer than the group's session timeout (a long bisection, a slow ClickHouse) must not
// get the member dropped and its block stored again by whoever takes the partition over. Two
// members of one group, one partition each, every store slowed past the 6 s session timeout:
// each block is stored once (the test counts the store calls per block token, which ClickHouse's
// deduplication would otherwise hide, and the rows by pid), nobody rejoins the group, and the
// heartbeats the coordinator received during the stores are counted (kafkajs's HEARTBEAT events).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/common/store/index'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, KafkaIngester, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type TestBroker } from '../support/kafka-broker.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

/** The least session timeout a broker accepts (group.min.session.timeout.ms). */
const SESSION_MS = 6000
/** Every store takes this much longer than it would: past the session timeout. */
const STORE_MS = 8000
const PER_PARTITION = 5
const EXECS = 10

const t0 = BigInt(Date.now() - 60_000) * 1_000_000n

/** A collector's record of `EXECS` execs, pids from `first`. */
function record(node: string, r: number, first: number): Buffer {
  const at = (i: number) => Long.fromString((t0 + BigInt(r * EXECS + i)).toString(), true)
  return Buffer.from(
    v1.EventBatch.encode({
      node,
      bootId: `boot-${node}`,
      batchId: `${node}-${r}`,
      sequence: r,
      firstTimeNs: at(0),
      lastTimeNs: at(EXECS - 1),
      exec: Array.from({ length: EXECS }, (_, i) => {
        const pid = first + i
        return { timeNs: at(i), task: { pid, tgid: pid, comm: 'long' }, filename: '/bin/long' }
      }),
    }).finish(),
  )
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const counter = async (m: IngestMetrics, name: string) => {
  const text = await m.registry.getSingleMetricAsString(name)
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
}

describe('ingester with a store longer than the session timeout (real Kafka, chDB)', {
  skip,
  timeout: 90_000,
}, () => {
  let broker: TestBroker
  let kafka: Kafka
  let tmp: string
  let store: ChdbStore

  before(async () => {
    broker = await startBroker()
    kafka = new Kafka({ clientId: 'test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-long-store-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
  })
  after(async () => {
    await store?.close()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('two members, every store past the session timeout: each block stored once, no rebalance', async () => {
    const node = 'node-long-store'
    const topic = TOPICS.exec
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
          brokers: [broker.bootstrap],
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
        const messages = Array.from({ length: PER_PARTITION }, (_, r) => {
          const first = 100_000 * (partition + 1) + r * EXECS
          for (let i = 0; i < EXECS; i++) want.push(first + i)
          return { partition, value: record(node, partition * PER_PARTITION + r, first) }
        })
        await producer.send({ topic, messages })
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
