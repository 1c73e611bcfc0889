// Malformed records among valid ones on every event topic, through a real broker and
// `ebbflow ingest` (the CLI, one process for the whole run): random bytes, empty, truncated,
// another message type, 5 MB records, absurd timestamps and sequences, and an event whose
// bytes ClickHouse cannot parse (the block is bisected). Valid records carrying unknown fields
// are valid: stored, not dead-lettered. The test checks what it published against what came
// out: every malformed record in the dead-letter topic with its origin and a reason, every
// valid event stored (by its time, which the test chose), the ingester never restarted, and
// consumed = stored + dead letters. CI: 50 malformed among 1,000 valid records per topic
// (events of one family each); soak: 1,000 among 100,000.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DLQ_TOPIC, TOPICS } from '@ebbflow/common/topics'
import { DLQ_HEADERS } from '@ebbflow/ingester'
import { Long, v1, v1Types } from '@ebbflow/proto'
import { ChdbStore, FAMILY_ROUTES } from '@ebbflow/store'
import { type Admin, Kafka, logLevel } from 'kafkajs'
import { type Cli, ingest, rng, waitFor } from '../faults/support.ts'
import { EVENT_MESSAGES, fullMessage } from '../support/full-records.ts'
import { freePort, startBroker, type TestBroker } from '../support/kafka-broker.ts'
import { fuzzProfile } from './profile.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const VALID = Number(process.env.MALFORMED_VALID ?? fuzzProfile.cases(1_000, 100_000))
const MALFORMED = fuzzProfile.cases(50, 1_000)
/** 5 MB records cost the broker and the dead letters 5 MB each: a few per topic suffice. */
const HUGE = fuzzProfile.cases(1, 10)
/**
 * Records ClickHouse cannot parse cost a bisection each: about log2(block) failed queries of
 * ~0.4 s on chDB, several seconds per record. A few per topic in CI, 20 in the soak profile.
 */
const UNPARSABLE = fuzzProfile.cases(1, 20)
const EVENTS_PER_RECORD = 2
const NODE = `node-malformed-${fuzzProfile.seed}`
const HUGE_BYTES = 5 * 1024 * 1024
/** The event topics take the 5 MB records (the broker's default is 1 MiB). */
const TOPIC_MAX_BYTES = 6 * 1024 * 1024

/** The family each topic carries here (EventBatch field, its message, its table). */
const FAMILY: Record<string, 'exec' | 'tcp' | 'syscall' | 'file'> = {
  [TOPICS.exec]: 'exec',
  [TOPICS.net]: 'tcp',
  [TOPICS.syscall]: 'syscall',
  [TOPICS.file]: 'file',
}
const TABLE_OF = new Map(FAMILY_ROUTES.map((r) => [r.field, r.table]))

type Kind =
  | 'random'
  | 'empty'
  | 'truncated'
  | 'metadata'
  | 'huge'
  | 'absurd-time'
  | 'absurd-sequence'
  | 'unparsable-event'
const KINDS: Kind[] = ['random', 'empty', 'truncated', 'metadata', 'absurd-time', 'absurd-sequence']

function varint(n: number): Buffer {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return Buffer.from(out)
}
const lenField = (id: number, bytes: Buffer) =>
  Buffer.concat([varint((id << 3) | 2), varint(bytes.length), bytes])
/** Field numbers no version of the proto uses: a newer writer's fields, to an old reader. */
const unknownFields = () =>
  Buffer.concat([varint((4000 << 3) | 0), varint(123456), lenField(4001, randomBytes(16))])

interface Published {
  topic: string
  value: Buffer
  kind: Kind | 'valid'
  /** The events' times (ns) a valid record carries. */
  times: bigint[]
}

describe('malformed records among valid ones, through ebbflow ingest', {
  skip: hasJava ? false : 'needs Java 17+ for the local Kafka broker',
  timeout: fuzzProfile.soak ? 3_600_000 : 240_000,
}, () => {
  let broker: TestBroker
  let tmp: string
  let admin: Admin
  let cli: Cli | undefined

  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-malformed-'))
    admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...Object.values(TOPICS).map((topic) => ({
          topic,
          configEntries: [{ name: 'max.message.bytes', value: String(TOPIC_MAX_BYTES) }],
        })),
        // The dead-letter topic keeps the broker's default limit: letters are cut to fit it.
        { topic: DLQ_TOPIC },
      ],
    })
  })
  after(async () => {
    await cli?.stop()
    await admin?.disconnect()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it(`dead-letters ${MALFORMED} malformed records per topic with origin and reason, stores ${VALID} valid ones`, async () => {
    const random = rng(fuzzProfile.seed)
    const baseNs = BigInt(Date.now() - 600_000) * 1_000_000n
    const seed = { n: 1 }
    let sequence = 0

    const batch = (family: string, events: Buffer[], over: Record<string, unknown> = {}) => {
      const header = Buffer.from(
        v1.EventBatch.encode({
          node: NODE,
          bootId: 'boot-malformed',
          collectorInstanceId: 'instance-malformed',
          batchId: `malformed-${sequence}`,
          sequence: sequence++,
          ...over,
        }).finish(),
      )
      const id = v1Types.EventBatch.fields[family]!.id
      return Buffer.concat([header, ...events.map((e) => lenField(id, e))])
    }
    const event = (family: string, time?: bigint): { bytes: Buffer; time: bigint } => {
      const type = v1Types[EVENT_MESSAGES[family as keyof typeof EVENT_MESSAGES]]
      const msg = fullMessage(type, seed, baseNs)
      // fullMessage's values count up past 65,535 over thousands of events: ports stay ports.
      if ('sport' in msg) msg.sport = 1 + (seed.n % 65_535)
      if ('dport' in msg) msg.dport = 1 + ((seed.n + 1) % 65_535)
      // And pids stay under the kernel's PID_MAX_LIMIT (4,194,304), which the store checks: past
      // ~20,000 records per topic they would not, and valid records would be dead-lettered.
      const pid = (v: unknown) => 1 + (Number(v) % 4_000_000)
      const task = msg.task as Record<string, unknown> | undefined
      if (task && 'pid' in task) task.pid = pid(task.pid)
      if (task && 'tgid' in task) task.tgid = pid(task.tgid)
      for (const k of ['pid', 'childPid', 'childTgid'])
        if (k in msg && msg[k] !== undefined) msg[k] = pid(msg[k])
      // The event's own node names its rows' node: the test's, so its rows are found by it.
      if (msg.meta) (msg.meta as Record<string, unknown>).node = NODE
      if (time !== undefined) msg.timeNs = Long.fromString(time.toString(), true)
      const t = BigInt((msg.timeNs as Long).toString())
      return { bytes: Buffer.from(type.encode(type.fromObject(msg)).finish()), time: t }
    }
    const valid = (topic: string, i: number): Published => {
      const family = FAMILY[topic]!
      const events = Array.from({ length: EVENTS_PER_RECORD }, () => event(family))
      // Every tenth valid record is written by a "newer" collector: unknown fields in the batch
      // and in its events, which a reader skips.
      const extra = i % 10 === 0
      const value = batch(
        family,
        events.map((e) => (extra ? Buffer.concat([e.bytes, unknownFields()]) : e.bytes)),
      )
      return {
        topic,
        value: extra ? Buffer.concat([value, unknownFields()]) : value,
        kind: 'valid',
        times: events.map((e) => e.time),
      }
    }
    const malformed = (topic: string, kind: Kind): Published => {
      const family = FAMILY[topic]!
      let value: Buffer
      switch (kind) {
        case 'random':
          value = randomBytes(1 + Math.floor(random() * 4096))
          break
        case 'empty':
          value = Buffer.alloc(0)
          break
        case 'truncated': {
          // Cut inside the last event: its length prefix promises bytes that are not there.
          const last = event(family)
          const whole = batch(family, [event(family).bytes, last.bytes])
          value = whole.subarray(0, whole.length - 1 - Math.floor(random() * last.bytes.length))
          break
        }
        case 'metadata':
          value = Buffer.from(
            v1.Metadata.encode({ node: NODE, namespace: 'ns', pod: 'p' } as never).finish(),
          )
          break
        case 'huge':
          value = randomBytes(HUGE_BYTES)
          break
        case 'absurd-time':
          value = batch(family, [event(family, 2n ** 64n - 1n).bytes, event(family).bytes])
          break
        case 'absurd-sequence':
          value = batch(family, [event(family).bytes], {
            sequence: Long.fromString('18446744073709551615', true),
          })
          break
        case 'unparsable-event':
          // Field 1 with wire type 7, which protobuf does not have: the header reads (the family
          // is skipped by its length), ClickHouse's parser cannot.
          value = batch(family, [Buffer.concat([Buffer.from([0x0f]), randomBytes(12)])])
          break
      }
      return { topic, value, kind, times: [] }
    }

    // Per topic: the malformed records at random places among the valid ones.
    const published: Published[] = []
    for (const topic of Object.values(TOPICS)) {
      const list = Array.from({ length: VALID }, (_, i) => valid(topic, i))
      for (let m = 0; m < MALFORMED; m++) {
        const kind =
          m < HUGE ? 'huge' : m < HUGE + UNPARSABLE ? 'unparsable-event' : KINDS[m % KINDS.length]!
        list.splice(Math.floor(random() * (list.length + 1)), 0, malformed(topic, kind))
      }
      published.push(...list)
    }

    // Published in order, one partition per topic: each record's offset is its place.
    const producer = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    }).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const offsetOf = new Map<Published, string>()
    const publishStarted = performance.now()
    for (const topic of Object.values(TOPICS)) {
      const mine = published.filter((p) => p.topic === topic)
      for (let i = 0; i < mine.length; ) {
        // Sends of at most ~512 KiB, and a 5 MB record alone in its send.
        const chunk: Published[] = []
        let bytes = 0
        while (i < mine.length && (chunk.length === 0 || bytes + mine[i]!.value.length < 512_000)) {
          bytes += mine[i]!.value.length
          chunk.push(mine[i++]!)
          if (bytes >= 512_000) break
        }
        const [meta] = await producer.send({
          topic,
          acks: -1,
          messages: chunk.map((p) => ({ key: NODE, value: p.value })),
        })
        const base = BigInt(meta!.baseOffset!)
        for (const [k, p] of chunk.entries()) offsetOf.set(p, String(base + BigInt(k)))
      }
    }
    await producer.disconnect()
    const publishSeconds = (performance.now() - publishStarted) / 1000

    const metricsPort = await freePort()
    const group = `malformed-${fuzzProfile.seed}`
    const ingestStarted = performance.now()
    cli = ingest(broker.bootstrap, join(tmp, 'data'), group, {
      EBBFLOW_METRICS_PORT: String(metricsPort),
      EBBFLOW_LOG_LEVEL: 'warn',
    })
    const firstPid = cli.pid
    const ends = new Map<string, string>()
    for (const topic of Object.values(TOPICS))
      ends.set(topic, (await admin.fetchTopicOffsets(topic))[0]!.high)
    const committed = async () => {
      // The group coordinator answers "loading" while the group's first member joins.
      const got = await admin
        .fetchOffsets({ groupId: group, topics: Object.values(TOPICS) })
        .catch(() => [])
      return got.length > 0 && got.every((t) => t.partitions[0]!.offset === ends.get(t.topic))
    }
    await waitFor(
      'every record consumed and committed',
      async () => {
        if (!cli!.running)
          throw new Error(`ebbflow ingest exited:\n${cli!.lines.slice(-20).join('\n')}`)
        return committed()
      },
      fuzzProfile.soak ? 3_000_000 : 90_000,
      250,
    ).catch(async (err) => {
      const got = await admin.fetchOffsets({ groupId: group, topics: Object.values(TOPICS) })
      const where = got.map((t) => `${t.topic} ${t.partitions[0]!.offset}/${ends.get(t.topic)}`)
      throw new Error(
        `${(err as Error).message}; committed ${where.join(', ')}\n${cli!.lines.slice(-15).join('\n')}`,
      )
    })
    const ingestSeconds = (performance.now() - ingestStarted) / 1000
    assert.ok(cli.running, 'the ingester is still running')
    assert.equal(cli.pid, firstPid)

    const metricsText = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    const metric = (re: RegExp) =>
      [...metricsText.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0)
    const storedRecords = metric(
      /^ebbflow_ingest_records_total\{[^}]*outcome="stored"[^}]*\} (\S+)$/gm,
    )
    const deadRecords = metric(
      /^ebbflow_ingest_records_total\{[^}]*outcome="dead_letter"[^}]*\} (\S+)$/gm,
    )
    const bisectSeconds = metric(/^ebbflow_ingest_bisect_seconds_total (\S+)$/gm)
    const bisections = metric(/^ebbflow_ingest_bisections_total (\S+)$/gm)
    const unreadable = metric(/^ebbflow_ingest_unreadable_records_total (\S+)$/gm)

    // Every dead letter, read back from the topic.
    const letters: Record<string, string>[] = []
    const consumer = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    }).consumer({ groupId: `${group}-dlq-reader`, maxBytes: 16 * 1024 * 1024 })
    await consumer.connect()
    await consumer.subscribe({ topic: DLQ_TOPIC, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        letters.push(
          Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
        )
      },
    })
    const [dlqEnd] = await admin.fetchTopicOffsets(DLQ_TOPIC)
    await waitFor(
      'the dead letters read back',
      () => letters.length >= Number(dlqEnd!.high),
      30_000,
    )
    await consumer.disconnect()

    await cli.stop()
    const store = await ChdbStore.open(join(tmp, 'data'))
    const storedTimes = new Map<string, string[]>()
    try {
      for (const topic of Object.values(TOPICS)) {
        const table = TABLE_OF.get(FAMILY[topic]!)!
        const rows = await store.query<{ t: string }>(
          `SELECT toString(toUnixTimestamp64Nano(time)) AS t FROM ebbflow.${table} WHERE node = '${NODE}'`,
        )
        storedTimes.set(
          topic,
          rows.map((r) => r.t),
        )
      }
    } finally {
      await store.close()
    }

    const bad = published.filter((p) => p.kind !== 'valid')
    const good = published.filter((p) => p.kind === 'valid')
    const key = (topic: string, offset: string) => `${topic}/0/${offset}`
    const letterAt = new Map(
      letters.map((l) => [key(l[DLQ_HEADERS.topic]!, l[DLQ_HEADERS.offset]!), l]),
    )
    const badKeys = new Set(bad.map((p) => key(p.topic, offsetOf.get(p)!)))
    const extra = letters.filter(
      (l) => !badKeys.has(key(l[DLQ_HEADERS.topic]!, l[DLQ_HEADERS.offset]!)),
    )
    assert.equal(
      letters.length,
      bad.length,
      `one dead letter per malformed record, no more; ${extra.length} others, e.g. ${JSON.stringify(extra.slice(0, 2))}`,
    )
    assert.equal(letterAt.size, letters.length, 'no record dead-lettered twice')
    const reasons: Record<string, Record<string, number>> = {}
    for (const p of bad) {
      const l = letterAt.get(key(p.topic, offsetOf.get(p)!))
      assert.ok(l, `a ${p.kind} record at ${p.topic}@${offsetOf.get(p)} has its dead letter`)
      assert.equal(l[DLQ_HEADERS.partition], '0')
      assert.ok(l[DLQ_HEADERS.reason], `${p.kind}: a reason`)
      assert.ok(l[DLQ_HEADERS.error], `${p.kind}: an error`)
      reasons[p.kind] ??= {}
      reasons[p.kind]![l[DLQ_HEADERS.reason]!] = (reasons[p.kind]![l[DLQ_HEADERS.reason]!] ?? 0) + 1
      if (p.kind === 'empty') assert.equal(l[DLQ_HEADERS.reason], 'empty_record')
      if (p.kind === 'absurd-time') assert.match(l[DLQ_HEADERS.error]!, /time \d+ ns out of range/)
      if (p.kind === 'absurd-sequence')
        assert.match(l[DLQ_HEADERS.error]!, /sequence \d+ out of range/)
      if (p.kind === 'huge') {
        assert.equal(l[DLQ_HEADERS.truncated], 'true')
        assert.equal(l[DLQ_HEADERS.originalBytes], String(HUGE_BYTES))
      }
    }
    for (const topic of Object.values(TOPICS)) {
      const want = good
        .filter((p) => p.topic === topic)
        .flatMap((p) => p.times.map(String))
        .sort()
      const got = [...storedTimes.get(topic)!].sort()
      assert.equal(got.length, want.length, `${topic}: one row per valid event`)
      assert.deepEqual(got, want, `${topic}: the events the test published`)
    }
    assert.equal(storedRecords + deadRecords, published.length, 'consumed = stored + dead letters')
    assert.equal(storedRecords, good.length)
    assert.equal(deadRecords, bad.length)

    fuzzProfile.report('malformed-records', {
      topics: Object.values(TOPICS).length,
      validPerTopic: VALID,
      malformedPerTopic: MALFORMED,
      hugePerTopic: HUGE,
      unparsablePerTopic: UNPARSABLE,
      records: published.length,
      events: good.length * EVENTS_PER_RECORD,
      publishSeconds: Number(publishSeconds.toFixed(2)),
      ingestSeconds: Number(ingestSeconds.toFixed(2)),
      recordsPerSecond: Math.round(published.length / ingestSeconds),
      bisections,
      bisectSeconds: Number(bisectSeconds.toFixed(2)),
      unreadable,
      reasons,
    })
  })
})
