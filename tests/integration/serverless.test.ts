// The ingester as functions, through their real runtimes. Records are published by the
// collector's Kafka publisher to a real broker and read back as a platform reads them; then:
//
// - Lambda: the packaged bundle (npm run package:functions) runs under the AWS Lambda Runtime
//   Interface Emulator with the npm runtime client aws-lambda-ric, invoked over HTTP with MSK
//   trigger events. A retried event adds no rows; a bad record goes to the dead-letter topic
//   while the invocation succeeds; a store that cannot write (its chDB folder made read-only)
//   fails the invocation, and the platform's retry then stores it.
// - Knative: `ebbflow ingest --knative-port` receives the same records as CloudEvents made by
//   the official `cloudevents` SDK, binary and structured, with a KafkaSource's attributes:
//   200 once stored, 422 (dead-lettered) for a record that can never be stored, 400
//   (dead-lettered) for a request that is no KafkaSource event, 503 while the store cannot write.
//
// Every expectation is what the test itself published; the rows are counted after the function
// let go of its store.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/common/wire'
import { ChdbStore, migrate } from '@ebbflow/store'
import { CloudEvent, HTTP } from 'cloudevents'
import { Kafka, logLevel } from 'kafkajs'
import { parse } from 'yaml'
import { isRoot } from '../support/capture.ts'
import {
  brokerUnavailable,
  startBroker,
  type TestBroker,
  testPublisher,
} from '../support/kafka-broker.ts'
import { lambdaUnavailable, type RunningFunction, startFunction } from '../support/lambda.ts'
import { syntheticEvents } from './events-fixture.ts'

const ROOT = join(import.meta.dirname, '../..')
const EVENTS = 300
const GARBAGE = Buffer.from('not an EventBatch: \u0000\u00ff garbage from a foreign producer')

interface Rec {
  topic: string
  partition: number
  offset: string
  key: Buffer | null
  value: Buffer
  timestamp: string
}

/** What a Lambda MSK trigger delivers for these records (grouped by topic-partition). */
function mskEvent(records: readonly Rec[], bootstrap: string) {
  const grouped: Record<string, unknown[]> = {}
  for (const r of records) {
    const key = `${r.topic}-${r.partition}`
    grouped[key] ??= []
    grouped[key].push({
      topic: r.topic,
      partition: r.partition,
      offset: Number(r.offset),
      timestamp: Number(r.timestamp),
      timestampType: 'CREATE_TIME',
      key: r.key?.toString('base64') ?? null,
      value: r.value.toString('base64'),
      headers: [],
    })
  }
  return {
    eventSource: 'SelfManagedKafka',
    bootstrapServers: bootstrap,
    records: grouped,
  }
}

/** The CloudEvent a KafkaSource named `ebbflow-events` in namespace `ebbflow` sends for `r`. */
function kafkaSourceEvent(r: Rec): CloudEvent<Buffer> {
  const key = r.key?.toString('utf8')
  return new CloudEvent<Buffer>({
    id: `partition:${r.partition}/offset:${r.offset}`,
    source: `/apis/v1/namespaces/ebbflow/kafkasources/ebbflow-events#${r.topic}`,
    subject: `partition:${r.partition}#${r.offset}`,
    type: 'dev.knative.kafka.event',
    time: new Date(Number(r.timestamp)).toISOString(),
    datacontenttype: 'application/octet-stream',
    data: r.value,
    ...(key === undefined ? {} : { key, partitionkey: key }),
  })
}

async function post(
  url: string,
  message: { headers: Record<string, unknown>; body: unknown },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: message.headers as Record<string, string>,
    body: message.body as string | Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(30_000),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** Every record of `topics` now on the broker, in topic, partition and offset order. */
async function readAll(kafka: Kafka, topics: string[]): Promise<Rec[]> {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map<string, number>()
  for (const topic of topics)
    for (const p of await admin.fetchTopicOffsets(topic).catch(() => []))
      if (Number(p.high) > 0) ends.set(`${topic}:${p.partition}`, Number(p.high))
  await admin.disconnect()
  const want = [...ends.values()].reduce((n, h) => n + h, 0)
  const out: Rec[] = []
  const consumer = kafka.consumer({ groupId: `sls-read-${randomUUID()}` })
  await consumer.connect()
  await consumer.subscribe({
    topics: [...new Set([...ends.keys()].map((k) => k.split(':')[0]!))],
    fromBeginning: true,
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`read ${out.length} of ${want} records`)),
      30_000,
    )
    consumer
      .run({
        eachMessage: async ({ topic, partition, message }) => {
          out.push({
            topic,
            partition,
            offset: message.offset,
            key: message.key,
            value: message.value ?? Buffer.alloc(0),
            timestamp: message.timestamp,
          })
          if (out.length >= want) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
      .catch(reject)
  })
  await consumer.disconnect()
  return out.sort((a, b) =>
    a.topic !== b.topic
      ? a.topic.localeCompare(b.topic)
      : a.partition !== b.partition
        ? a.partition - b.partition
        : Number(a.offset) - Number(b.offset),
  )
}

/**
 * Rows of every event table of a store only this test wrote (one per event, whatever node its
 * metadata names, and one ingest-lag row per batch).
 */
async function rowsOf(dataDir: string): Promise<{ rows: number; letters: number }> {
  const store = await ChdbStore.open(dataDir)
  try {
    const tables = [
      'process_events',
      'tcp_connections',
      'traffic',
      'syscall_counts',
      'syscall_events',
      'collector_stats',
    ]
    const [r] = await store.query<{ n: string; letters: string }>(
      `SELECT ${tables.map((t) => `(SELECT count() FROM ebbflow.${t})`).join(' + ')} AS n,
              (SELECT count() FROM ebbflow.dead_letters) AS letters`,
    )
    return { rows: Number(r!.n), letters: Number(r!.letters) }
  } finally {
    await store.close()
  }
}

async function migrated(dataDir: string): Promise<void> {
  const store = await ChdbStore.open(dataDir)
  await migrate(store)
  await store.close()
}

/** A read-only bind mount over `dir` for the time of `run`: root writes nowhere in it. */
async function readOnly<T>(dir: string, run: () => Promise<T>): Promise<T> {
  execFileSync('mount', ['--bind', dir, dir])
  try {
    execFileSync('mount', ['-o', 'remount,bind,ro', dir])
    return await run()
  } finally {
    execFileSync('umount', [dir])
  }
}

const unavailable =
  lambdaUnavailable() ??
  brokerUnavailable() ??
  (isRoot() ? undefined : 'needs root for a read-only bind mount (the store that cannot write)')

describe('serverless ingest through the Lambda and Knative runtimes', {
  skip: unavailable ?? false,
  timeout: 300_000,
}, () => {
  let tmp: string
  let broker: TestBroker
  let kafka: Kafka
  let records: Rec[]
  let garbage: Rec
  let dist: string
  const node = `sls-${randomUUID().slice(0, 8)}`

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-sls-'))
    dist = join(tmp, 'dist')
    broker = await startBroker()
    kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const { publisher } = testPublisher([broker.bootstrap], { node, batchMaxEvents: 40 })
    publisher.publish(syntheticEvents(EVENTS))
    const stats = await publisher.close()
    assert.equal(stats.publishedEvents, EVENTS)
    records = await readAll(kafka, Object.values(TOPICS))
    // A record no collector wrote, on the exec topic after the collector's.
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: TOPICS.exec, messages: [{ key: 'foreign', value: GARBAGE }] })
    await producer.disconnect()
    const all = await readAll(kafka, [TOPICS.exec])
    garbage = all.find((r) => r.value.equals(GARBAGE))!
    assert.ok(garbage, 'the garbage record is on the broker')
    assert.ok(records.length >= 4, `the publisher wrote ${records.length} records`)
  })

  after(async () => {
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('Lambda (emulator + aws-lambda-ric): retries add nothing, bad records are dead-lettered, a store that cannot write fails the invocation', async () => {
    const packaged = spawnSync(
      process.execPath,
      [join(ROOT, 'scripts/package-functions.ts'), '--out', dist],
      { encoding: 'utf8' },
    )
    assert.equal(packaged.status, 0, packaged.stderr)
    const taskRoot = join(dist, 'ingest')
    // chDB is not in the zip (see scripts/package-functions.ts); the function's own
    // node_modules provides it, as the container recipe installs it.
    mkdirSync(join(taskRoot, 'node_modules'))
    symlinkSync(join(ROOT, 'node_modules/chdb'), join(taskRoot, 'node_modules/chdb'))
    const dataDir = join(tmp, 'lambda-data')
    await migrated(dataDir)
    const dlq = `ebbflow.dlq.sls-lambda-${randomUUID().slice(0, 8)}`
    const half = Math.ceil(records.length / 2)
    const first = records.slice(0, half)
    const second = [...records.slice(half), garbage]

    let fn: RunningFunction | undefined
    try {
      fn = await startFunction(taskRoot, 'index.handler', {
        EBBFLOW_DATA_DIR: dataDir,
        EBBFLOW_KAFKA: broker.bootstrap,
        EBBFLOW_DLQ_TOPIC: dlq,
        EBBFLOW_LOG_LEVEL: 'warn',
      })
      const a = await fn.invoke(mskEvent(first, broker.bootstrap))
      assert.equal(a.status, 200)
      assert.deepEqual(
        [a.body.records, a.body.stored, a.body.deadLetters],
        [first.length, first.length, 0],
        `${JSON.stringify(a.body)}\n${fn.output()}`,
      )
      // The platform retries an event whose answer it did not get.
      const retried = await fn.invoke(mskEvent(first, broker.bootstrap))
      assert.deepEqual(retried.body.stored, first.length)

      const wrong = await fn.invoke({ eventSource: 'aws:sqs', Records: [] })
      assert.equal(wrong.body.errorType, 'EbbflowError', JSON.stringify(wrong.body))
      assert.match(String(wrong.body.errorMessage), /not an MSK trigger event/)

      const down = await readOnly(dataDir, () => fn!.invoke(mskEvent(second, broker.bootstrap)))
      assert.equal(down.body.errorType, 'EbbflowError', JSON.stringify(down.body))
      assert.match(String(down.body.errorMessage), /read-only file system|cannot|readonly/i)
      const b = await fn.invoke(mskEvent(second, broker.bootstrap))
      assert.deepEqual(
        [b.body.records, b.body.stored, b.body.deadLetters],
        [second.length, second.length - 1, 1],
        JSON.stringify(b.body),
      )
    } finally {
      await fn?.stop()
    }
    assert.deepEqual(await rowsOf(dataDir), { rows: EVENTS + records.length, letters: 0 })
    const letters = await readAll(kafka, [dlq])
    assert.equal(letters.length, 1)
    assert.ok(letters[0]!.value.equals(GARBAGE))
  })

  it('Knative sink (ebbflow ingest --knative-port): CloudEvents from the SDK, binary and structured', async () => {
    const dataDir = join(tmp, 'knative-data')
    await migrated(dataDir)
    const dlq = `ebbflow.dlq.sls-knative-${randomUUID().slice(0, 8)}`
    let child: ChildProcess | undefined
    let err = ''
    try {
      child = spawn(
        join(ROOT, 'bin/ebbflow'),
        [
          'ingest',
          '--knative-port',
          '0',
          '--data-dir',
          dataDir,
          '--kafka',
          broker.bootstrap,
          '--dlq-topic',
          dlq,
          '--metrics-port',
          '-1',
          '--migrate',
          'false',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the sink did not start:\n${err}`)), 60_000)
        child!.once('exit', (code) => reject(new Error(`ingest exited (${code}):\n${err}`)))
        child!.stderr!.on('data', (c: Buffer) => {
          err += c.toString()
          const m = /"port":(\d+)[^\n]*Knative KafkaSource sink listening/.exec(err)
          if (m) {
            clearTimeout(timer)
            resolve(Number(m[1]))
          }
        })
      })
      const url = `http://127.0.0.1:${port}/`
      const last = records.at(-1)!
      for (const [i, r] of records.slice(0, -1).entries()) {
        const ce = kafkaSourceEvent(r)
        const res = await post(url, i % 2 === 0 ? HTTP.binary(ce) : HTTP.structured(ce))
        assert.equal(res.status, 200, JSON.stringify(res.body))
      }
      // A redelivery, in the other mode.
      const again = await post(url, HTTP.structured(kafkaSourceEvent(records[0]!)))
      assert.equal(again.status, 200)

      const bad = await post(url, HTTP.binary(kafkaSourceEvent(garbage)))
      assert.equal(bad.status, 422, JSON.stringify(bad.body))
      const ping = new CloudEvent({
        source: '/apis/v1/namespaces/ebbflow/pingsources/tick',
        type: 'dev.knative.sources.ping',
        data: { tick: true },
      })
      const foreign = await post(url, HTTP.binary(ping))
      assert.equal(foreign.status, 400)
      assert.match(String(foreign.body.error), /not a KafkaSource event/)

      const down = await readOnly(dataDir, () => post(url, HTTP.binary(kafkaSourceEvent(last))))
      assert.equal(down.status, 503, JSON.stringify(down.body))
      const retried = await post(url, HTTP.binary(kafkaSourceEvent(last)))
      assert.equal(retried.status, 200)
    } finally {
      if (child && child.exitCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
    }
    assert.deepEqual(await rowsOf(dataDir), { rows: EVENTS + records.length, letters: 0 })
    const letters = await readAll(kafka, [dlq])
    assert.equal(letters.length, 2)
    assert.ok(letters.some((l) => l.value.equals(GARBAGE)))
    assert.ok(letters.some((l) => l.value.toString().includes('"tick":true')))
  })
  it('the alerter as a scheduled Lambda (alert.zip): one --once run per invocation', async () => {
    const dataDir = join(tmp, 'lambda-data')
    const taskRoot = join(dist, 'alert')
    mkdirSync(join(taskRoot, 'node_modules'))
    symlinkSync(join(ROOT, 'node_modules/chdb'), join(taskRoot, 'node_modules/chdb'))
    // The rules the zip carries, counted from their files.
    const rules = readdirSync(join(taskRoot, 'alerts')).flatMap(
      (f) =>
        (parse(readFileSync(join(taskRoot, 'alerts', f), 'utf8')) as { rules: { name: string }[] })
          .rules,
    )
    assert.ok(rules.length > 0)
    let fn: RunningFunction | undefined
    try {
      fn = await startFunction(taskRoot, 'index.handler', {
        EBBFLOW_RULES: 'alerts',
        EBBFLOW_DATA_DIR: dataDir,
        EBBFLOW_MIGRATE: 'false',
        EBBFLOW_LOG_LEVEL: 'warn',
      })
      // What an EventBridge schedule sends; the function does not read it.
      const r = await fn.invoke({
        version: '0',
        source: 'aws.events',
        'detail-type': 'Scheduled Event',
        time: new Date().toISOString(),
        detail: {},
      })
      assert.deepEqual(r.body, { mode: 'once' }, fn.output())
    } finally {
      await fn?.stop()
    }
    const store = await ChdbStore.open(dataDir)
    try {
      const done = await store.query<{ rule: string }>(
        "SELECT DISTINCT rule FROM ebbflow.alert_evaluations WHERE phase = 'done' ORDER BY rule",
      )
      assert.deepEqual(
        done.map((d) => d.rule),
        rules.map((r) => r.name).sort(),
      )
    } finally {
      await store.close()
    }
  })
})
