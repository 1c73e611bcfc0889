// Fuzzes the ingester's record path, from the Kafka record's bytes to rows and dead letters:
// decodeRecord (EventBatch decoding, batch checks, range validation), the row mapping and
// its JSONEachRow text, and the dead letters in both of their shapes (the DLQ topic's message
// and the dead_letters table's rows). The inputs: random bytes; batches the collector's own
// encoder writes from kernel events (the golden capture) with fields set to random and edge
// values; those batches cut short, with bytes changed, and with unknown fields added.
//
// Only the database is left out (a million cases through chDB would take hours): the store
// here serializes rows exactly as ChdbStore does and parses them back. Every record must come
// out stored or dead-lettered, never both, never neither, and never as an exception.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { decodeBatch, newDecodeErrors } from '@ebbflow/common/events/decode'
import { DEFAULT_SECURITY_SYSCALLS, syscallName } from '@ebbflow/common/events/syscalls'
import type { CapturedEvent, RecordEvent } from '@ebbflow/common/events/types'
import { type Store, toJsonEachRow } from '@ebbflow/common/store/index'
import { TOPICS, WallClock, writeEvent } from '@ebbflow/common/wire'
import {
  type DeadLetter,
  type DeadLetterSink,
  DLQ_HEADERS,
  DLQ_MAX_MESSAGE_BYTES,
  dlqMessage,
  IngestMetrics,
  Ingestor,
  type InRecord,
  StoreDeadLetters,
} from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { fuzzProfile } from './profile.ts'

const goldenEvents: RecordEvent[] = []
decodeBatch(
  readFileSync(join(import.meta.dirname, '../../services/common/test/fixtures/golden/records.bin')),
  goldenEvents,
  newDecodeErrors(),
  { stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [] },
)
/** Wall clock of the batches: a minute ago, so every event time is a real recent one. */
const clock = new WallClock(BigInt(Date.now() - 60_000) * 1_000_000n)
/** A hang, not a slow case: wide because the machine is shared (the slowest case is reported). */
const CASE_BOUND_MS = 2000

/** Rows and dead letters as the store would receive them, parsed back from their text. */
class SerializingStore implements Store {
  rows = new Map<string, Record<string, unknown>[]>()
  async exec(): Promise<void> {
    throw new Error('not used by the ingester path')
  }
  async query<T>(): Promise<T[]> {
    throw new Error('not used by the ingester path')
  }
  async insert(table: string, rows: readonly object[]): Promise<void> {
    const text = toJsonEachRow(rows)
    const lines = text.split('\n').filter((l) => l !== '')
    assert.equal(lines.length, rows.length)
    const list = this.rows.get(table) ?? []
    for (const line of lines) list.push(JSON.parse(line) as Record<string, unknown>)
    this.rows.set(table, list)
  }
  async close(): Promise<void> {}
}

/** Both dead-letter shapes: the topic's message (checked for its limit) and the table's rows. */
class BothDeadLetters implements DeadLetterSink {
  readonly table: StoreDeadLetters
  letters: DeadLetter[] = []
  constructor(store: Store) {
    this.table = new StoreDeadLetters(store)
  }
  async write(letters: readonly DeadLetter[]): Promise<void> {
    for (const l of letters) {
      const m = dlqMessage(l)
      assert.equal(m.headers[DLQ_HEADERS.reason], l.reason)
      assert.ok(m.value.length <= DLQ_MAX_MESSAGE_BYTES)
      this.letters.push(l)
    }
    await this.table.write(letters)
  }
  async close(): Promise<void> {}
}

const logger = createLogger('fuzz', 'silent')
const stats = { cases: 0, records: 0, stored: 0, deadLetters: 0, slowestMs: 0 }
const reasons: Record<string, number> = {}

// One ingester for every case (a fresh one per case spends most of its time building metrics);
// the store and the dead letters are emptied before each case.
const store = new SerializingStore()
const deadLetters = new BothDeadLetters(store)
const ingestor = new Ingestor({
  store,
  deadLetters,
  metrics: new IngestMetrics(),
  logger,
  source: 'fuzz',
})

/** Runs one block through the real Ingestor and checks what every input must satisfy. */
async function ingest(records: InRecord[]) {
  store.rows = new Map()
  deadLetters.letters = []
  const started = performance.now()
  const result = await ingestor.ingestBlock(records, `fuzz-${stats.cases}`)
  const ms = performance.now() - started
  stats.cases++
  stats.records += records.length
  stats.stored += result.stored
  stats.deadLetters += result.deadLetters
  stats.slowestMs = Math.max(stats.slowestMs, ms)
  for (const l of deadLetters.letters) reasons[l.reason] = (reasons[l.reason] ?? 0) + 1
  assert.ok(ms < CASE_BOUND_MS, `one block took ${ms.toFixed(1)} ms`)
  // Consumed = stored + dead letters, and each dead letter is a row of its table.
  assert.equal(result.stored + result.deadLetters, records.length)
  assert.equal(deadLetters.letters.length, result.deadLetters)
  assert.equal(store.rows.get('ebbflow.dead_letters')?.length ?? 0, result.deadLetters)
  for (const l of deadLetters.letters) assert.ok(l.error.length > 0, `${l.reason} without a reason`)
  return { result, store, deadLetters }
}

const record = (value: Buffer | null, topic: string = TOPICS.exec): InRecord => ({
  topic,
  partition: 0,
  offset: String(stats.cases),
  key: null,
  value,
})

/** What the ingester must store for each event: its row count by table (the test's own map). */
const TABLE_OF: Record<RecordEvent['kind'], string> = {
  exec: 'ebbflow.process_events',
  exit: 'ebbflow.process_events',
  fork: 'ebbflow.process_events',
  tcp: 'ebbflow.tcp_connections',
  syscall: 'ebbflow.syscall_events',
}

/** A batch as the collector writes it: header fields, then its events one by one. */
function encodeBatch(
  header: { node: string; batchId: string; bootId: string; sequence: number },
  events: CapturedEvent[],
): Buffer {
  const w = protobuf.Writer.create()
  for (const e of events) writeEvent(w, e, clock)
  const head = v1.EventBatch.encode({
    ...header,
    sequence: Long.fromNumber(header.sequence, true),
  }).finish()
  return Buffer.concat([head, w.finish()])
}

const edgeNumber = fc.oneof(
  fc.nat(70_000),
  fc.constantFrom(0, 1, 64, 65, 255, 256, 65_535, 65_536, 4_194_304, 4_194_305),
  fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
)
const anyText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }))

/** A kernel event from the capture with some fields set to random and edge values. */
const event: fc.Arbitrary<CapturedEvent> = fc
  .record({
    base: fc.constantFrom(...goldenEvents),
    numbers: fc.dictionary(
      fc.constantFrom(
        'pid',
        'tgid',
        'uid',
        'gid',
        'exitCode',
        'signal',
        'durationNs',
        'childPid',
        'sport',
        'dport',
        'syscallNr',
      ),
      edgeNumber,
      { maxKeys: 3 },
    ),
    texts: fc.dictionary(
      fc.constantFrom('comm', 'filename', 'parentComm', 'saddr', 'daddr'),
      anyText,
      {
        maxKeys: 2,
      },
    ),
    args: fc.option(fc.array(anyText, { maxLength: 5 }), { nil: undefined }),
    meta: fc.option(
      fc.record({ node: anyText, namespace: anyText, pod: anyText, container: anyText }),
      { nil: undefined },
    ),
  })
  .map(({ base, numbers, texts, args, meta }) => {
    const e = { ...base } as Record<string, unknown>
    for (const [k, v] of Object.entries({ ...numbers, ...texts })) if (k in e) e[k] = v
    if (args && e.kind === 'exec') e.args = args
    if (meta) e.meta = meta
    return e as unknown as CapturedEvent
  })

const header = fc.record({
  node: fc.oneof(fc.constant('node-fuzz'), anyText),
  batchId: fc.oneof(fc.uuid(), anyText),
  bootId: fc.oneof(fc.uuid(), anyText),
  sequence: fc.oneof(fc.nat(1000), edgeNumber),
})
const batchBytes = fc
  .tuple(header, fc.array(event, { maxLength: 8 }))
  .map(([h, events]) => encodeBatch(h, events))

/** Fields no v1 reader knows (numbers above every field of EventBatch), of each wire type. */
const unknownField = fc
  .record({
    id: fc.integer({ min: 1000, max: 536_870_911 }),
    kind: fc.constantFrom('varint', 'fixed64', 'bytes', 'fixed32'),
    n: fc.nat(),
    bytes: fc.uint8Array({ maxLength: 64 }),
  })
  .map((f) => {
    const w = protobuf.Writer.create()
    if (f.kind === 'varint') w.uint32((f.id << 3) | 0).uint64(f.n)
    if (f.kind === 'fixed64') w.uint32((f.id << 3) | 1).fixed64(f.n)
    if (f.kind === 'bytes') w.uint32((f.id << 3) | 2).bytes(f.bytes)
    if (f.kind === 'fixed32') w.uint32((f.id << 3) | 5).fixed32(f.n)
    return Buffer.from(w.finish())
  })

const edit = fc.record({
  op: fc.constantFrom('set', 'insert', 'delete', 'cut'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
})

function applyEdits(bytes: Buffer, edits: { op: string; at: number; byte: number }[]): Buffer {
  let b = [...bytes]
  for (const e of edits) {
    const at = e.at % (b.length + 1)
    if (e.op === 'set' && at < b.length) b[at] = e.byte
    if (e.op === 'insert') b.splice(at, 0, e.byte)
    if (e.op === 'delete') b.splice(at, 1)
    if (e.op === 'cut') b = b.slice(0, at)
  }
  return Buffer.from(b)
}

describe('fuzzing the ingester record path', {
  timeout: fuzzProfile.soak ? 3_600_000 : 90_000,
}, () => {
  const runs = (ci: number, soak: number) => ({
    numRuns: fuzzProfile.cases(ci, soak),
    seed: fuzzProfile.seed,
  })

  it('dead-letters random bytes on any topic with a reason', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.uint8Array({ maxLength: 2048 }), { freq: 8, nil: null }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.constantFrom(...Object.values(TOPICS), 'ebbflow.other.v1'),
        async (values, topic) => {
          await ingest(values.map((v) => record(v === null ? null : Buffer.from(v), topic)))
        },
      ),
      runs(800, 350_000),
    )
  })

  it('stores re-encoded kernel events, one row per event, unknown fields or not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...goldenEvents), { minLength: 1, maxLength: 8 }),
        fc.array(unknownField, { maxLength: 3 }),
        fc.uuid(),
        async (events, unknown, batchId) => {
          const h = { node: 'node-fuzz', batchId, bootId: 'boot-fuzz', sequence: 7 }
          const bytes = Buffer.concat([encodeBatch(h, events), ...unknown])
          const { result, store } = await ingest([record(bytes)])
          assert.equal(result.deadLetters, 0, 'a valid batch was dead-lettered')
          const want = new Map<string, number>()
          for (const e of events) want.set(TABLE_OF[e.kind], (want.get(TABLE_OF[e.kind]) ?? 0) + 1)
          for (const [table, n] of want) assert.equal(store.rows.get(table)?.length, n, table)
        },
      ),
      runs(300, 100_000),
    )
  })

  it('stores or dead-letters batches with random and edge values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batchBytes, { minLength: 1, maxLength: 3 }), async (values) => {
        await ingest(values.map((v) => record(v)))
      }),
      runs(500, 300_000),
    )
  })

  it('stores or dead-letters valid batches cut short, with bytes changed, inserted or removed', async () => {
    await fc.assert(
      fc.asyncProperty(
        batchBytes,
        fc.array(edit, { minLength: 1, maxLength: 6 }),
        async (bytes, edits) => {
          await ingest([record(applyEdits(bytes, edits))])
        },
      ),
      runs(800, 250_000),
    )
    fuzzProfile.report('protobuf-batches', {
      ...stats,
      reasons,
      crashes: 0,
      caseBoundMs: CASE_BOUND_MS,
    })
  })
})
