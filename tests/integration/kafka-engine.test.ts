// ClickHouse's own Kafka engine as the ingester (`ebbflow migrate --kafka-engine`), on chDB
// against the real local broker: every row of every table equals what the collector published
// (dozens of records per topic, the views created after the records were on the topics); a
// record that is not protobuf and one whose exit code no kernel gives land in
// ebbflow.dead_letters with their reason, and so does one with an absurd time, while a valid record
// after them is stored; nothing else lands there; batches with a hole in their
// sequence show the hole in collectorHealth through the ledger views.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createApi } from '@ebbflow/api'
import { type CapturedEvent, createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { Long, PROTO_DIR, v1 } from '@ebbflow/proto'
import {
  ChdbStore,
  kafkaEngineDropStatements,
  kafkaEngineStatements,
  migrate,
  type Table,
} from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type TestBroker, testPublisher } from '../support/kafka-broker.ts'
import { toRows } from '../support/rows.ts'
import { syntheticEvents } from './events-fixture.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'

/** Chosen columns per table, compared with what the test published. */
const COLUMNS: Record<Exclude<Table, 'collector_stats'>, string[]> = {
  process_events: ['time', 'kind', 'node', 'pid', 'tgid', 'filename', 'args', 'exit_code'],
  tcp_connections: ['time', 'event', 'saddr', 'daddr', 'sport', 'dport', 'bytes_sent', 'pod'],
  traffic: ['time', 'direction', 'remote_addr', 'remote_port', 'bytes', 'packets'],
  syscall_counts: ['time', 'syscall', 'count', 'cgroup_id'],
  syscall_events: ['time', 'syscall', 'args', 'string_values'],
  file_accesses: ['time', 'path', 'access', 'op', 'count'],
}
const DEFAULTS: Record<string, unknown> = { filename: '', args: [], exit_code: '0' }
/** Events the collector publishes: 9 kinds in turn, in batches of 20: dozens of records a topic. */
const EVENTS = 1800
/** One instance's batches with sequence 3 missing. */
const GAP_SEQUENCES = [0, 1, 2, 4, 5]
const GAP_NODE = 'node-gap'
/** The node of the valid record sent after the refused ones. */
const AFTER_NODE = 'node-after'

function normalize(v: unknown): unknown {
  if (typeof v === 'bigint' || typeof v === 'number') return String(v)
  if (Array.isArray(v)) return v.map(normalize)
  if (typeof v === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(v)) return `::ffff:${v}`
  // "seconds.nanoseconds" as the row mapper writes time → DateTime64(9)'s text.
  if (typeof v === 'string' && /^\d{10}\.\d{9}$/.test(v)) {
    const [s, ns] = v.split('.')
    return `${new Date(Number(s) * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${ns}`
  }
  return v
}

describe('Kafka engine route (chDB + local broker)', { skip, timeout: 240_000 }, () => {
  let broker: TestBroker
  let tmp: string
  let store: ChdbStore
  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-kafka-engine-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
  })
  after(async () => {
    // Dropping the Kafka tables stops chDB's background consumers before the store closes.
    const kafkaTables = await store
      ?.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = 'ebbflow' AND engine = 'Kafka'",
      )
      .catch(() => [])
    for (const { name } of kafkaTables ?? [])
      await store.exec(`DROP TABLE IF EXISTS ebbflow.${name}`).catch(() => undefined)
    await store?.close()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('stores what was published and dead-letters what cannot be stored', async () => {
    const run = randomUUID().slice(0, 8)
    // This file's own broker: the collector's topics are this test's alone.
    const topics = TOPICS
    const brokers = [broker.bootstrap]
    const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({
      topics: Object.values(topics).map((topic) => ({ topic })),
      waitForLeaders: true,
    })
    await admin.disconnect()
    // Small batches, so that each topic has dozens of records and a lost one shows.
    const { publisher, options } = testPublisher(brokers, { node: 'node-k', batchMaxEvents: 20 })
    const nowBoot = Number(BigInt(Date.now()) * 1_000_000n - options.clock.offsetNs)
    const events: CapturedEvent[] = syntheticEvents(EVENTS, nowBoot - 600e9)
    publisher.publish(events)
    assert.equal(await publisher.drain(30_000), true, 'published')
    await publisher.close()
    const producer = kafka.producer()
    await producer.connect()
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])
    const outOfRange = Buffer.from(
      v1.EventBatch.encode({
        node: 'node-k',
        batchId: `bad-${run}`,
        exit: [
          {
            timeNs: options.clock.toWall(nowBoot),
            task: { pid: 42, tgid: 42 },
            exitCode: -(2 ** 31),
          },
        ],
      }).finish(),
    )
    // An exec 2^64-1 ns after the epoch: protobuf reads it, no clock gives it.
    const absurdTime = Buffer.from(
      v1.EventBatch.encode({
        node: 'node-k',
        batchId: `absurd-${run}`,
        exec: [
          {
            timeNs: Long.fromString('18446744073709551615', true),
            task: { pid: 43, tgid: 43 },
            filename: '/bin/absurd',
          },
        ],
      }).finish(),
    )
    // A valid record after the refused ones, in the same partition: the stream goes on.
    const after = Buffer.from(
      v1.EventBatch.encode({
        node: AFTER_NODE,
        batchId: `after-${run}`,
        exec: [
          {
            timeNs: options.clock.toWall(nowBoot),
            task: { pid: 44, tgid: 44 },
            filename: '/bin/after',
          },
        ],
      }).finish(),
    )
    await producer.send({ topic: topics.exec, messages: [{ key: 'bad-1', value: garbage }] })
    await producer.send({ topic: topics.exec, messages: [{ key: 'bad-2', value: outOfRange }] })
    await producer.send({ topic: topics.exec, messages: [{ key: 'bad-3', value: absurdTime }] })
    await producer.send({ topic: topics.exec, messages: [{ key: 'good-4', value: after }] })
    // Batches of one collector instance with sequence 3 missing: the ledger views must show it.
    const gapInstance = `gap-${run}`
    const stamp = Long.fromString(options.clock.toWall(nowBoot).toString(), true)
    for (const sequence of GAP_SEQUENCES)
      await producer.send({
        topic: topics.net,
        messages: [
          {
            key: 'gap',
            value: Buffer.from(
              v1.EventBatch.encode({
                node: GAP_NODE,
                collectorInstanceId: gapInstance,
                bootId: 'boot-gap',
                sequence,
                batchId: `${gapInstance}-${sequence}`,
                firstTimeNs: stamp,
                lastTimeNs: stamp,
                drops: [{ timeNs: stamp, family: 2, reason: 1, count: 1 }],
                traffic: [
                  {
                    timeNs: stamp,
                    direction: 2,
                    protocol: 6,
                    ipFamily: 4,
                    remoteAddr: '10.8.0.1',
                    remotePort: 7000 + sequence,
                    bytes: 1,
                    packets: 1,
                  },
                ],
              }).finish(),
            ),
          },
        ],
      })
    await producer.disconnect()

    // The views are created after the records are on the topics, as `migrate --kafka-engine`
    // over a running pipeline does: the Kafka table reads at once, so a view that did not exist
    // yet when its first block was handed out would miss rows (the loss this route had).
    for (const sql of kafkaEngineStatements({
      brokers: broker.bootstrap,
      topics,
      group: `ke-${run}`,
      schema: join(PROTO_DIR, 'ebbflow/v1/events.proto:EventBatch'),
      flushIntervalMs: 500,
    }))
      await store.exec(sql)

    const expected = toRows(events, { offsetNs: options.clock.offsetNs, node: 'node-k' })
    const count = async (sql: string) => Number((await store.query<{ n: string }>(sql))[0]!.n)
    const deadline = Date.now() + 120_000
    const tables = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[]
    for (;;) {
      let done = (await count('SELECT count() AS n FROM ebbflow.dead_letters')) >= 3
      for (const t of tables)
        done &&=
          (await count(
            `SELECT count() AS n FROM ebbflow.${t} WHERE node NOT IN ('${GAP_NODE}', '${AFTER_NODE}')`,
          )) >= expected[t].length
      done &&=
        (await count(
          `SELECT count() AS n FROM ebbflow.process_events WHERE node = '${AFTER_NODE}'`,
        )) >= 1
      done &&=
        (await count(
          `SELECT count() AS n FROM ebbflow.batch_ledger WHERE collector_instance_id = 'gap-${run}'`,
        )) >= GAP_SEQUENCES.length
      if (done) break
      if (Date.now() > deadline) {
        const counts: Record<string, number> = {}
        for (const t of [...tables, 'dead_letters'])
          counts[t] = await count(`SELECT count() AS n FROM ebbflow.${t}`)
        const errors = await store.query<{ table: string; e: string }>(
          "SELECT table, substring(arrayStringConcat(exceptions.text, ' | '), 1, 600) AS e FROM system.kafka_consumers",
        )
        throw new Error(
          `timed out waiting for the Kafka engine: ${JSON.stringify({ counts, expected: Object.fromEntries(tables.map((t) => [t, expected[t].length])), errors })}`,
        )
      }
      await new Promise((r) => setTimeout(r, 250))
    }
    for (const t of tables) {
      const cols = COLUMNS[t]
      const want = expected[t]
        .map((r) => JSON.stringify(cols.map((c) => normalize(r[c] ?? DEFAULTS[c]))))
        .sort()
      const select = cols.map((c) => (c === 'time' ? 'toString(time) AS time' : c)).join(', ')
      const got = (
        await store.query<Record<string, unknown>>(
          `SELECT ${select} FROM ebbflow.${t} WHERE node NOT IN ('${GAP_NODE}', '${AFTER_NODE}')`,
        )
      )
        .map((r) => JSON.stringify(cols.map((c) => normalize(r[c]))))
        .sort()
      assert.deepEqual(got, want, `${t}: rows`)
    }
    const letters = await store.query<{
      reason: string
      error: string
      key: string
      value_base64: string
    }>('SELECT reason, error, key, value_base64 FROM ebbflow.dead_letters ORDER BY key')
    assert.equal(letters.length, 3, JSON.stringify(letters))
    assert.equal(letters[0]!.key, 'bad-1')
    assert.equal(letters[0]!.reason, 'undecodable')
    assert.equal(
      Buffer.from(letters[0]!.value_base64, 'base64').toString('hex'),
      garbage.toString('hex'),
    )
    assert.equal(letters[1]!.key, 'bad-2')
    assert.equal(letters[1]!.reason, 'invalid_event')
    assert.match(letters[1]!.error, /exit\[0\]: exit code -2147483648 out of range/)
    assert.equal(
      await count('SELECT count() AS n FROM ebbflow.process_events WHERE pid = 42'),
      0,
      'the out-of-range exit is not stored',
    )
    assert.equal(letters[2]!.key, 'bad-3')
    assert.equal(letters[2]!.reason, 'invalid_event')
    assert.match(letters[2]!.error, /exec\[0\]: time 18446744073709551615 ns out of range/)
    assert.equal(
      await count('SELECT count() AS n FROM ebbflow.process_events WHERE pid = 43'),
      0,
      'the exec of absurd time is not stored',
    )
    assert.deepEqual(
      await store.query(
        `SELECT pid, filename FROM ebbflow.process_events WHERE node = '${AFTER_NODE}'`,
      ),
      [{ pid: 44, filename: '/bin/after' }],
      'the record after the refused ones is stored',
    )

    // The ledger views: the gap in the sequence is what collectorHealth reports.
    const api = createApi({ store, tokens: {}, open: true, logger: createLogger('test', 'silent') })
    const res = await api.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `query($node: String) { collectorHealth(node: $node) { node gapBatches
          collectors { instanceId family storedBatches storedEvents gapBatches gaps { from to } } } }`,
        variables: { node: GAP_NODE },
      }),
    })
    const body = (await res.json()) as {
      data?: { collectorHealth: { gapBatches: number; collectors: unknown[] }[] }
      errors?: unknown
    }
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    const [health] = body.data!.collectorHealth
    assert.equal(health?.gapBatches, 1, JSON.stringify(health))
    assert.deepEqual(health?.collectors, [
      {
        instanceId: gapInstance,
        family: 'net',
        storedBatches: GAP_SEQUENCES.length,
        // One traffic counter per batch; its drop record is not an event of the batch.
        storedEvents: GAP_SEQUENCES.length,
        gapBatches: 1,
        gaps: [{ from: 3, to: 3 }],
      },
    ])

    // `migrate --kafka-engine` run again with other settings replaces the route (drop, then
    // create): the new flush interval is in the Kafka tables, every view is there again, and
    // the rows already stored are still there once (the group resumes from its offsets).
    const before = await count('SELECT count() AS n FROM ebbflow.process_events')
    const views = () =>
      store.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = 'ebbflow' AND name LIKE 'kafka\\_%' ORDER BY name",
      )
    const names = (await views()).map((v) => v.name)
    for (const sql of [
      ...kafkaEngineDropStatements(topics),
      ...kafkaEngineStatements({
        brokers: broker.bootstrap,
        topics,
        group: `ke-${run}`,
        schema: join(PROTO_DIR, 'ebbflow/v1/events.proto:EventBatch'),
        flushIntervalMs: 700,
      }),
    ])
      await store.exec(sql)
    assert.deepEqual(
      (await views()).map((v) => v.name),
      names,
    )
    const defs = await store.query<{ q: string }>(
      "SELECT create_table_query AS q FROM system.tables WHERE database = 'ebbflow' AND engine = 'Kafka'",
    )
    assert.equal(defs.length, Object.keys(topics).length)
    for (const d of defs) assert.match(d.q, /kafka_flush_interval_ms = 700/)
    assert.equal(await count('SELECT count() AS n FROM ebbflow.process_events'), before)
  })
})
