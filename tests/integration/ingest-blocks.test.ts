// How `ebbflow ingest` cuts a backlog into blocks, against a real broker and chDB: a fetch that
// ends inside a block does not make a short block while the partition holds more.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, KafkaDeadLetters, KafkaIngester } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type TestBroker } from '../support/kafka-broker.ts'
import { until } from '../support/proc.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

async function rows(store: ChdbStore): Promise<number> {
  const [r] = await store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.syscall_counts')
  return Number(r!.n)
}

describe('ingest blocks', { skip }, () => {
  let broker: TestBroker
  let brokers: string[]
  let tmp: string

  before(async () => {
    broker = await startBroker()
    brokers = [broker.bootstrap]
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-ingest-blocks-'))
  })

  after(async () => {
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it("a backlog is stored in full blocks: a fetch's short tail waits for the next fetch", async () => {
    // 10 records of 1,000 syscall counts; blocks of at most 5,000 rows; a fetch holds 7
    // records. Stored fetch by fetch that is 5 + 2 (the first fetch) + 3 (the second) = 3
    // blocks; with the first fetch's tail carried into the second, 2 blocks of 5. The last
    // block, which reaches the partition's end, is stored at once.
    const topic = TOPICS.syscall
    const nowNs = BigInt(Date.now()) * 1_000_000n
    const at = (r: number, k: number) =>
      Long.fromString((nowNs - BigInt((10 - r) * 1_000_000_000 + k)).toString(), true)
    const records = Array.from({ length: 10 }, (_, r) =>
      Buffer.from(
        v1.EventBatch.encode({
          node: 'node-carry',
          batchId: `carry-${r}`,
          bootId: 'boot-carry',
          firstTimeNs: at(r, 999),
          lastTimeNs: at(r, 0),
          syscallCount: Array.from({ length: 1000 }, (_, k) => ({
            timeNs: at(r, k),
            intervalNs: 1_000_000_000,
            cgroupId: 77,
            syscallNr: k % 300,
            syscall: `sys_${k % 300}`,
            count: r * 1000 + k + 1,
          })),
        }).finish(),
      ),
    )
    const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    for (const [r, value] of records.entries())
      await producer.send({ topic, messages: [{ key: `carry-${r}`, value }] })
    await producer.disconnect()
    const size = Math.max(...records.map((v) => v.length))
    const store = await ChdbStore.open(join(tmp, 'carry'))
    try {
      await migrate(store)
      const logger = createLogger('test', 'warn')
      const metrics = new IngestMetrics()
      const deadLetters = new KafkaDeadLetters(brokers)
      const ingestor = new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' })
      const consumer = new KafkaIngester(
        {
          brokers,
          groupId: `g-${randomUUID()}`,
          topics: [topic],
          maxRows: 5000,
          maxBytes: Math.floor(size * 7.5),
          maxWaitMs: 100,
        },
        ingestor,
        metrics,
        logger,
      )
      await consumer.start()
      try {
        await until(
          'every row',
          () => rows(store),
          (n) => n >= 10_000,
          60_000,
        )
      } finally {
        await consumer.stop()
        await deadLetters.close()
      }
      const [stored] = await store.query<{ n: string; total: string }>(
        "SELECT count() AS n, sum(count) AS total FROM ebbflow.syscall_counts WHERE node = 'node-carry'",
      )
      assert.deepEqual(stored, { n: '10000', total: String((10_000 * 10_001) / 2) })
      const blocks = (await metrics.registry
        .getSingleMetric('ebbflow_ingest_insert_duration_seconds')!
        .get())!.values.find((v) =>
        (v as { metricName?: string }).metricName?.endsWith('_count'),
      )!.value
      assert.equal(blocks, 2, 'two blocks of 5,000 rows, not 5 + 2 + 3')
    } finally {
      await store.close()
    }
  })
})
