// The ingester against a real Kafka broker and chDB: published events come out as rows equal
// to what was published; malformed records go to ebbflow.dlq.v1 with their error and bytes
// while every valid row is stored; an ingester SIGKILLed between insert and commit, restarted,
// stores nothing twice.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CapturedEvent, createLogger } from '@ebbflow/common'
import { TOPICS, type WallClock } from '@ebbflow/common/wire'
import {
  DLQ_HEADERS,
  DLQ_TOPIC,
  IngestMetrics,
  Ingestor,
  KafkaDeadLetters,
  KafkaIngester,
} from '@ebbflow/ingester'
import { v1 } from '@ebbflow/proto'
import { ChdbStore, migrate, TABLES, type Table } from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type TestBroker, testPublisher } from '../support/kafka-broker.ts'
import { Proc } from '../support/proc.ts'
import { type RowsByTable, toRows } from '../support/rows.ts'
import { syntheticEvents } from './events-fixture.ts'

const bin = join(import.meta.dirname, '../../bin/ebbflow')
const hasJava = spawnSync('java', ['-version']).status === 0
const skip = hasJava ? false : 'needs Java 17+ for the local Kafka broker'
const child = join(import.meta.dirname, '../support/ingest-child.ts')

/** Synthetic events stamped in the last hour (older rows would fall to the TTL at insert). */
function recentEvents(count: number, clock: WallClock): CapturedEvent[] {
  const nowBoot = Number(BigInt(Date.now()) * 1_000_000n - clock.offsetNs)
  return syntheticEvents(count, nowBoot - 600e9)
}

async function publishAll(brokers: string[], events: CapturedEvent[], node = 'node-a') {
  const { publisher, options } = testPublisher(brokers, { node })
  const shifted = recentEvents(events.length, options.clock)
  publisher.publish(shifted)
  assert.equal(await publisher.drain(30_000), true, 'published')
  await publisher.close()
  return { events: shifted, clock: options.clock, node }
}

/** What the store must hold for these events: the row mapper's output, chosen columns. */
const COLUMNS: Record<Table, string[]> = {
  process_events: [
    'time',
    'kind',
    'node',
    'pid',
    'tgid',
    'filename',
    'args',
    'exit_code',
    'duration_ns',
  ],
  tcp_connections: [
    'time',
    'event',
    'saddr',
    'daddr',
    'sport',
    'dport',
    'bytes_sent',
    'bytes_received',
    'namespace',
    'pod',
  ],
  traffic: ['time', 'direction', 'remote_addr', 'remote_port', 'bytes', 'packets'],
  syscall_counts: ['time', 'syscall', 'count', 'cgroup_id'],
  syscall_events: ['time', 'syscall', 'args', 'string_values'],
  file_accesses: ['time', 'path', 'access', 'count', 'repeat'],
  collector_stats: ['time', 'metric', 'family', 'reason', 'value'],
}

/** Columns an event kind leaves unset take the column's default in the table. */
const DEFAULTS: Record<string, unknown> = {
  filename: '',
  args: [],
  exit_code: '0',
  duration_ns: '0',
}

function normalize(v: unknown): unknown {
  if (typeof v === 'bigint' || typeof v === 'number') return String(v)
  if (Array.isArray(v)) return v.map(normalize)
  // IPv4 is stored IPv4-mapped in the IPv6 columns.
  if (typeof v === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(v)) return `::ffff:${v}`
  return v
}

function expectedRows(rows: RowsByTable, table: Table): string[] {
  return rows[table]
    .map((r) => JSON.stringify(COLUMNS[table].map((c) => normalize(r[c] ?? DEFAULTS[c]))))
    .sort()
}

async function storedRows(store: ChdbStore, table: Table): Promise<string[]> {
  const cols = COLUMNS[table]
  const select = cols.map((c) => (c === 'time' ? `toString(time) AS time` : c)).join(', ')
  const rows = await store.query<Record<string, unknown>>(`SELECT ${select} FROM ebbflow.${table}`)
  return rows.map((r) => JSON.stringify(cols.map((c) => normalize(r[c])))).sort()
}

/** DateTime64(9) as toString prints it: "YYYY-MM-DD hh:mm:ss.nnnnnnnnn". */
function timeText(secondsDotNanos: string): string {
  const [s, ns] = secondsDotNanos.split('.')
  return `${new Date(Number(s) * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${ns}`
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function count(store: ChdbStore, table: string): Promise<number> {
  const [r] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${table}`)
  return Number(r!.n)
}

/** Records an ingester must refuse, of every sort a broken producer could write. */
function malformed(i: number, valid: Buffer): Buffer | null {
  switch (i % 5) {
    case 0:
      return null
    case 1: // truncated in the middle of a field
      return valid.subarray(0, Math.max(1, Math.floor(valid.length / 2)))
    case 2: // a valid message of the wrong kind: decodes, but names no node or batch
      return Buffer.from(v1.EventBatch.encode({ sequence: i }).finish())
    case 3: // an invalid wire type
      return Buffer.from([0x0f, 0xff, 0xff, 0xff, i & 0xff])
    default: // text
      return Buffer.from(`{"not":"protobuf","i":${i}}`)
  }
}

describe('ingester (real Kafka, chDB)', { skip, timeout: 240_000 }, () => {
  let broker: TestBroker
  let brokers: string[]
  let tmp: string
  /** Every publish of this file, with the clock it used. */
  const publishes: { events: CapturedEvent[]; clock: WallClock; node: string }[] = []

  before(async () => {
    broker = await startBroker()
    brokers = [broker.bootstrap]
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-ingest-'))
  })

  after(async () => {
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('stores every published event as its row, and 1,000 malformed records go to the DLQ', async () => {
    const store = await ChdbStore.open(join(tmp, 'e2e'))
    await migrate(store)
    const published = await publishAll(brokers, syntheticEvents(6000))
    publishes.push(published)
    // 1,000 malformed records on the event topics, between valid ones.
    const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const valid = Buffer.from(
      v1.EventBatch.encode({
        node: 'n',
        batchId: 'b',
        exec: [{ timeNs: 1, filename: '/bin/x' }],
      }).finish(),
    )
    const topics = Object.values(TOPICS)
    for (let i = 0; i < 1000; i += 100)
      await producer.send({
        topic: topics[(i / 100) % topics.length]!,
        messages: Array.from({ length: 100 }, (_, k) => ({
          key: `bad-${i + k}`,
          value: malformed(i + k, valid),
        })),
      })
    const more = await publishAll(brokers, syntheticEvents(3000), 'node-b')
    publishes.push(more)
    await producer.disconnect()

    const logger = createLogger('test', 'warn')
    const metrics = new IngestMetrics()
    const deadLetters = new KafkaDeadLetters(brokers)
    const ingestor = new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' })
    const consumer = new KafkaIngester(
      { brokers, groupId: `g-${randomUUID()}`, topics, maxRows: 2000, maxWaitMs: 100 },
      ingestor,
      metrics,
      logger,
    )
    const expected = toRows(published.events, {
      offsetNs: published.clock.offsetNs,
      node: 'node-a',
    })
    const expectedB = toRows(more.events, { offsetNs: more.clock.offsetNs, node: 'node-b' })
    const total = (t: Table) => expected[t].length + expectedB[t].length
    await consumer.start()
    try {
      await waitFor('every row', async () => {
        for (const t of TABLES)
          if (t !== 'collector_stats' && (await count(store, t)) < total(t)) return false
        return true
      })
    } finally {
      await consumer.stop()
      await deadLetters.close()
    }
    for (const t of TABLES) {
      if (t === 'collector_stats') continue
      const want = [...expectedRows(expected, t), ...expectedRows(expectedB, t)].sort()
      const got = await storedRows(store, t)
      assert.equal(got.length, want.length, `${t}: row count`)
      assert.deepEqual(
        got,
        want
          .map((w) => {
            const cols = JSON.parse(w) as unknown[]
            cols[0] = timeText(String(cols[0]))
            return JSON.stringify(cols)
          })
          .sort(),
        `${t}: rows`,
      )
    }

    // The DLQ holds exactly the 1,000, each with its reason, origin and original bytes.
    const dlq: { headers: Record<string, string>; value: Buffer | null; key: string }[] = []
    const reader = kafka.consumer({ groupId: `dlq-${randomUUID()}` })
    await reader.connect()
    await reader.subscribe({ topic: DLQ_TOPIC, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`DLQ: ${dlq.length} of 1000`)), 30_000)
      reader
        .run({
          eachMessage: async ({ message }) => {
            const headers = Object.fromEntries(
              Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
            )
            dlq.push({ headers, value: message.value, key: message.key?.toString() ?? '' })
            if (dlq.length >= 1000) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
    await reader.disconnect()
    // No more than the 1,000: the topic's offsets count every record ever written to it.
    const admin = kafka.admin()
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(DLQ_TOPIC)
    await admin.disconnect()
    assert.equal(
      ends.reduce((n, o) => n + Number(o.high) - Number(o.low), 0),
      1000,
      'one dead letter per malformed record, no more',
    )
    assert.equal(dlq.length, 1000)
    const reasons = new Map<string, number>()
    for (const d of dlq) {
      const i = Number(d.key.slice(4))
      const original = malformed(i, valid)
      assert.deepEqual(d.value ?? Buffer.alloc(0), original ?? Buffer.alloc(0), `bytes of ${d.key}`)
      assert.ok(topics.includes(d.headers[DLQ_HEADERS.topic]!))
      assert.match(d.headers[DLQ_HEADERS.offset]!, /^\d+$/)
      assert.ok(d.headers[DLQ_HEADERS.error]!.length > 0)
      const reason = d.headers[DLQ_HEADERS.reason]!
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    assert.deepEqual(Object.fromEntries(reasons), {
      empty_record: 200,
      undecodable: 600,
      invalid_batch: 200,
    })
    const text = await metrics.registry.getSingleMetricAsString('ebbflow_ingest_dead_letters_total')
    assert.match(text, /reason="undecodable"\} 600/)
    await store.close()
  })

  it('ebbflow ingest: starts, stores, serves /metrics, stops on SIGTERM with exit 0', async () => {
    const dataDir = join(tmp, 'cli')
    const refused = spawnSync(bin, ['ingest', '--data-dir', dataDir], { encoding: 'utf8' })
    assert.equal(refused.status, 2, refused.stderr)
    assert.match(refused.stderr, /kafkaBrokers \(EBBFLOW_KAFKA\): required/)

    const p = spawn(
      bin,
      [
        'ingest',
        '--kafka',
        brokers[0]!,
        '--data-dir',
        dataDir,
        '--metrics-port',
        '0',
        '--group-id',
        `cli-${randomUUID()}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const exited = new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)))
    try {
      await waitFor('the ingester to start', async () => /"msg":"ingesting"/.test(stderr), 60_000)
      const port = Number(/"metricsPort":(\d+)/.exec(stderr)?.[1])
      const want = publishes.reduce(
        (n, x) =>
          n +
          x.events.filter((e) => e.kind === 'exec' || e.kind === 'exit' || e.kind === 'fork')
            .length,
        0,
      )
      await waitFor('every exec row', async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
        const rows = Number(
          /ebbflow_ingest_rows_total\{table="process_events"\} (\d+)/.exec(text)?.[1] ?? 0,
        )
        return rows >= want
      })
    } finally {
      p.kill('SIGTERM')
    }
    assert.equal(await exited, 0, stderr)
    assert.match(stderr, /finishing the block in flight/)
  })

  it('ebbflow ingest whose start is refused by the broker says why and exits 1', async () => {
    // A topic name the broker refuses: the admin is connected when the refusal comes. Before,
    // the connected clients kept the process alive after it had printed its error.
    const p = new Proc(
      spawn(
        bin,
        [
          'ingest',
          '--kafka',
          brokers[0]!,
          '--data-dir',
          join(tmp, 'refused'),
          '--metrics-port',
          '0',
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, EBBFLOW_TOPICS: 'ebbflow.exec.v1,no spaces allowed' },
        },
      ),
    )
    // Still running a minute after its start failed: the exit's timeout says so, with stderr.
    const code = await p.exit(60_000).finally(() => p.child.kill('SIGKILL'))
    assert.equal(code, 1, p.stderr)
    assert.match(p.stderr, /^ebbflow: .*(invalid|Topic creation errors)/im)
  })

  it('SIGKILL after insert and before commit, then a restart: no row is stored twice', async () => {
    const dataDir = join(tmp, 'crash')
    const group = `crash-${randomUUID()}`
    publishes.push(await publishAll(brokers, syntheticEvents(1500), 'node-c'))
    const run = (extra: string[]) => {
      const p = spawn(process.execPath, [child, brokers[0]!, dataDir, group, ...extra], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const lines: string[] = []
      let stderr = ''
      p.stdout!.setEncoding('utf8').on('data', (d: string) => {
        lines.push(...d.split('\n').filter(Boolean))
      })
      p.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr += d
      })
      return { p, lines, stderr: () => stderr }
    }
    const exited = (p: ChildProcess) =>
      new Promise<NodeJS.Signals | number | null>((resolve) =>
        p.once('exit', (code, signal) => resolve(signal ?? code)),
      )
    const crashed = run(['--crash-after-insert'])
    assert.equal(await exited(crashed.p), 'SIGKILL', crashed.stderr())
    assert.ok(
      crashed.lines.some((l) => JSON.parse(l).block),
      `the first block was stored before the kill: ${crashed.stderr()}`,
    )

    // More records arrive while it is down: a restarted consumer fetching from the committed
    // offset would now cut a longer first block under a different token.
    publishes.push(await publishAll(brokers, syntheticEvents(1500), 'node-d'))
    // A fresh group reads every publish of this file from the start.
    const want = (t: Table) =>
      publishes.reduce(
        (n, p) => n + toRows(p.events, { offsetNs: p.clock.offsetNs, node: p.node })[t].length,
        0,
      )
    const restarted = run([])
    try {
      await waitFor('the restarted ingester to catch up', async () => {
        const last = restarted.lines
          .map((l) => JSON.parse(l) as { rows?: Record<Table, number> })
          .filter((l) => l.rows)
          .at(-1)
        return (
          last?.rows !== undefined &&
          TABLES.every((t) => t === 'collector_stats' || last.rows![t] >= want(t))
        )
      })
    } finally {
      restarted.p.kill('SIGTERM')
      await exited(restarted.p)
    }
    assert.match(restarted.stderr(), /resuming a planned block/, 'the killed block had a plan')
    const store = await ChdbStore.open(dataDir)
    try {
      for (const t of TABLES)
        if (t !== 'collector_stats')
          assert.equal(await count(store, t), want(t), `${t}: each row once`)
    } finally {
      await store.close()
    }
  })
})
