// The ingester's other ways in, on chDB: the serverless handler with Knative and Lambda MSK
// event shapes (a retried delivery adds nothing), the embedded in-process queue from a real
// publisher, dead letters kept in the store when there is no Kafka, and a value the store
// refuses narrowed down to its one record while the rest of the block is stored.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { InProcessTransport, Publisher, WallClock } from '@ebbflow/collector'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import {
  handleKafkaBatch,
  IngestMetrics,
  Ingestor,
  InProcessIngester,
  type InRecord,
  type MskEvent,
  recordFromKnative,
  recordsFromMsk,
  StoreDeadLetters,
} from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { syntheticEvents } from './events-fixture.ts'

const logger = createLogger('test', 'silent')
const nowNs = () => BigInt(Date.now()) * 1_000_000n

/** An EventBatch as a collector writes it, with `n` exec events in the last minute. */
function batch(id: string, n: number, over: Record<string, unknown> = {}): Buffer {
  const t0 = nowNs() - 60_000_000_000n
  return Buffer.from(
    v1.EventBatch.encode({
      node: 'node-x',
      batchId: id,
      bootId: 'boot-x',
      firstTimeNs: Long.fromString(t0.toString(), true),
      lastTimeNs: Long.fromString((t0 + BigInt(n - 1)).toString(), true),
      exec: Array.from({ length: n }, (_, i) => ({
        timeNs: Long.fromString((t0 + BigInt(i)).toString(), true),
        task: { pid: 10 + i, tgid: 10 + i, comm: 'sh' },
        filename: `/bin/cmd-${id}-${i}`,
        args: ['cmd', String(i)],
      })),
      ...over,
    }).finish(),
  )
}

async function count(store: ChdbStore, sql: string): Promise<number> {
  const [r] = await store.query<{ n: string }>(sql)
  return Number(r!.n)
}

describe('ingester paths (chDB)', { timeout: 180_000 }, () => {
  let tmp: string
  let store: ChdbStore
  let ingestor: (source: string) => Ingestor

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-paths-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    const deadLetters = new StoreDeadLetters(store)
    ingestor = (source) =>
      new Ingestor({ store, deadLetters, metrics: new IngestMetrics(), logger, source })
  })

  after(async () => {
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('Lambda MSK: a delivery stored once, retried without new rows; bad records dead-lettered', async () => {
    const topic = TOPICS.exec
    const event: MskEvent = {
      eventSource: 'aws:kafka',
      records: {
        [`${topic}-0`]: [
          {
            topic,
            partition: 0,
            offset: 7,
            key: Buffer.from('node-x').toString('base64'),
            value: batch('msk-1', 3).toString('base64'),
          },
          { topic, partition: 0, offset: 8, value: Buffer.from('garbage').toString('base64') },
        ],
        [`${topic}-1`]: [
          { topic, partition: 1, offset: 3, value: batch('msk-2', 2).toString('base64') },
        ],
      },
    }
    const records = recordsFromMsk(event)
    assert.equal(records.length, 3)
    const first = await handleKafkaBatch(ingestor('msk'), records)
    // 5 exec rows, and one ingest_lag_ms row per stored batch.
    assert.deepEqual(first, { records: 3, stored: 2, deadLetters: 1, rows: 7 })
    const retried = await handleKafkaBatch(ingestor('msk'), records)
    assert.equal(retried.stored, 2)
    assert.equal(
      await count(
        store,
        "SELECT count() AS n FROM ebbflow.process_events WHERE filename LIKE '/bin/cmd-msk-%'",
      ),
      5,
    )
    const [letter] = await store.query<Record<string, string | number>>(
      "SELECT source, topic, partition, offset, reason, value_base64 FROM ebbflow.dead_letters WHERE source = 'msk' LIMIT 1",
    )
    assert.deepEqual(letter, {
      source: 'msk',
      topic,
      partition: 0,
      offset: '8',
      reason: 'undecodable',
      value_base64: Buffer.from('garbage').toString('base64'),
    })
    assert.throws(
      () => recordsFromMsk({ eventSource: 'aws:sqs', records: {} }),
      /not an MSK trigger event/,
    )
  })

  it('Knative KafkaSource: binary and structured CloudEvents; a non-Kafka event is refused', async () => {
    const topic = TOPICS.exec
    const binary = recordFromKnative(
      {
        'ce-source': `/apis/v1/namespaces/ebbflow/kafkasources/events#${topic}`,
        'ce-subject': 'partition:2#41',
        'ce-key': 'node-x',
        'content-type': 'application/octet-stream',
      },
      batch('kn-1', 4),
    )
    assert.deepEqual(
      {
        topic: binary.topic,
        partition: binary.partition,
        offset: binary.offset,
        key: binary.key?.toString(),
      },
      { topic, partition: 2, offset: '41', key: 'node-x' },
    )
    const structured = recordFromKnative(
      { 'content-type': 'application/cloudevents+json; charset=utf-8' },
      Buffer.from(
        JSON.stringify({
          specversion: '1.0',
          source: `/apis/v1/namespaces/ebbflow/kafkasources/events#${topic}`,
          subject: 'partition:2#42',
          id: 'partition:2/offset:42',
          type: 'dev.knative.kafka.event',
          data_base64: batch('kn-2', 1).toString('base64'),
        }),
      ),
    )
    assert.equal(structured.offset, '42')
    // One CloudEvent per request, as the sink receives them; the source retries the first.
    const a = await handleKafkaBatch(ingestor('knative'), [binary])
    const b = await handleKafkaBatch(ingestor('knative'), [structured])
    assert.deepEqual([a.rows, b.rows], [4 + 1, 1 + 1])
    await handleKafkaBatch(ingestor('knative'), [binary])
    assert.equal(
      await count(
        store,
        "SELECT count() AS n FROM ebbflow.process_events WHERE filename LIKE '/bin/cmd-kn-%'",
      ),
      5,
    )
    assert.throws(
      () =>
        recordFromKnative(
          { 'ce-source': '/apis/v1/pingsources/x', 'ce-subject': 'tick' },
          Buffer.alloc(0),
        ),
      /not a KafkaSource event/,
    )
  })

  it('a value the store refuses is narrowed to its record; the rest of the block is stored', async () => {
    const topic = TOPICS.net
    const tcp = (id: string, saddr: string) => {
      const t = Long.fromString((nowNs() - 1_000_000_000n).toString(), true)
      return Buffer.from(
        v1.EventBatch.encode({
          node: 'node-x',
          batchId: id,
          tcp: [
            {
              timeNs: t,
              kind: 1,
              role: 1,
              ipFamily: 4,
              saddr,
              daddr: '10.0.0.2',
              sport: 1,
              dport: 2,
            },
          ],
        }).finish(),
      )
    }
    const records: InRecord[] = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({
      topic,
      partition: 0,
      offset: String(100 + i),
      key: null,
      value: tcp(`bisect-${id}`, id === 'd' ? 'not-an-address' : `10.9.0.${i}`),
    }))
    const metrics = new IngestMetrics()
    const r = await new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics,
      logger,
      source: 'bisect',
    }).ingestBlock(records, 'bisect-block')
    assert.equal(r.stored, 4)
    assert.equal(r.deadLetters, 1)
    assert.equal(
      await count(
        store,
        "SELECT count() AS n FROM ebbflow.tcp_connections WHERE startsWith(toString(saddr), '::ffff:10.9.0.')",
      ),
      4,
    )
    const [letter] = await store.query<{ offset: string; reason: string; error: string }>(
      "SELECT offset, reason, error FROM ebbflow.dead_letters WHERE source = 'bisect'",
    )
    assert.equal(letter!.offset, '103')
    assert.equal(letter!.reason, 'store_rejected')
    assert.match(letter!.error, /not-an-address|IPv6|parse/i)
  })

  it('embedded: a publisher through the in-process queue into chDB, every event a row', async () => {
    const transport = new InProcessTransport()
    const clock = new WallClock(nowNs() - 1_000_000_000_000n - 60_000_000_000n)
    const publisher = new Publisher(transport, {
      node: 'node-embedded',
      clock,
      bootNow: () => 1_000_000_000_000,
      queueBudgetBytes: 1 << 26,
      batchMaxEvents: 300,
      batchMaxBytes: 1 << 20,
      lingerMs: 5,
    })
    const total = () =>
      count(
        store,
        `SELECT (SELECT count() FROM ebbflow.process_events) + (SELECT count() FROM ebbflow.tcp_connections)
              + (SELECT count() FROM ebbflow.traffic) + (SELECT count() FROM ebbflow.syscall_counts)
              + (SELECT count() FROM ebbflow.syscall_events) + (SELECT count() FROM ebbflow.collector_stats) AS n`,
      )
    const before = await total()
    const ingester = new InProcessIngester(ingestor('in-process'), logger, { maxWaitMs: 50 })
    const consuming = ingester.consume(transport.consume())
    const events = syntheticEvents(3000)
    publisher.publish(events)
    const published = await publisher.close()
    await transport.close()
    await consuming
    assert.equal(published.publishedEvents, 3000)
    assert.equal(ingester.stats.deadLetters, 0)
    assert.equal(
      ingester.stats.rows,
      3000 + ingester.stats.records,
      'one row per event (drop counts included), and one lag row per batch',
    )
    assert.equal((await total()) - before, 3000 + ingester.stats.records)
    const lag = await store.query<{ family: string; n: string; max: string }>(
      `SELECT family, count() AS n, max(value) AS max FROM ebbflow.collector_stats
       WHERE metric = 'ingest_lag_ms' AND node = 'node-embedded' GROUP BY family ORDER BY family`,
    )
    assert.deepEqual(
      lag.map((l) => l.family),
      ['exec', 'net', 'syscall'],
    )
    assert.equal(
      lag.reduce((n, l) => n + Number(l.n), 0),
      ingester.stats.records,
    )
  })
  it('in-process: ledger and lag rows of several blocks are held, then written together after their rows', async () => {
    const held = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger,
      source: 'in-process',
      deferBookkeeping: true,
    })
    // Longer than the test: only the end of the queue writes what is held.
    const ingester = new InProcessIngester(held, logger, { maxWaitMs: 20, bookkeepingMs: 600_000 })
    const transport = new InProcessTransport()
    const consuming = ingester.consume(transport.consume())
    const node = 'node-held'
    for (let i = 0; i < 3; i++) {
      const value = batch(`held-${i}`, 4, {
        node,
        collectorInstanceId: 'held',
        sequence: Long.fromNumber(i, true),
      })
      await transport.send([{ topic: TOPICS.exec, key: node, value }])
      const deadline = Date.now() + 30_000
      while (ingester.stats.blocks < i + 1) {
        assert.ok(Date.now() < deadline, `block ${i} was not stored within 30 s`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    const rows = `SELECT count() AS n FROM ebbflow.process_events WHERE filename LIKE '/bin/cmd-held-%'`
    const ledger = `SELECT count() AS n, uniqExact(stored_at) AS at FROM ebbflow.batch_ledger WHERE node = '${node}'`
    const lag = `SELECT count() AS n FROM ebbflow.collector_stats WHERE node = '${node}' AND metric = 'ingest_lag_ms'`
    assert.equal(await count(store, rows), 12, 'three blocks of 4 events, queryable')
    assert.equal(await count(store, ledger), 0, 'their ledger rows are held')
    assert.equal(await count(store, lag), 0, 'their lag rows are held')
    await transport.close()
    await consuming
    const [l] = await store.query<{ n: string; at: string }>(ledger)
    assert.deepEqual(l, { n: '3', at: '1' }, 'one ledger row per batch, written by one statement')
    assert.equal(await count(store, lag), 3)
    assert.equal(ingester.stats.blocks, 3)
  })
})
