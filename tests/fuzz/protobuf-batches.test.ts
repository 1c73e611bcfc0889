// Fuzzes the record path of protobuf EventBatch records, in two depths.
//
// Decoders, at volume (soak: a million cases): readBatchHeader (all the ingester reads of a
// record in JavaScript) and decodeEventBatch (the API's live tail) on random bytes and on valid
// batches cut short, bit-flipped and edited. Each input gives a value or one typed error, never
// another throw, a hang or an allocation out of proportion with the input.
//
// The whole path, fewer cases (each costs ClickHouse statements): blocks of valid, mutated and
// random records through the real Ingestor into chDB, where ClickHouse parses the records
// itself (store/batch-sql.ts: validation, insert, bisection). Every record comes out stored or
// dead-lettered with a reason, the block never throws or retries, and every valid record's rows
// are exactly the events the test wrote, found by identity. Batches with extreme field values
// are stored exactly as written or dead-lettered with a reason.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger, EbbflowError } from '@ebbflow/common'
import { readBatchHeader } from '@ebbflow/common/batch-header'
import { decodeEventBatch, TOPICS } from '@ebbflow/common/wire'
import {
  type DeadLetter,
  type DeadLetterSink,
  IngestMetrics,
  Ingestor,
  type InRecord,
  StoreDeadLetters,
} from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import fc from 'fast-check'
import { fuzzProfile } from './profile.ts'

const U64_MAX = 2n ** 64n - 1n
/** A hang, not a slow case (wide: the machine is shared; the slowest case is reported). */
const DECODE_BOUND_MS = 1000
const BLOCK_BOUND_MS = 30_000
/** Now minus a minute, in ns: inside every table's TTL. */
const NOW_NS = BigInt(Date.now() - 60_000) * 1_000_000n

interface ExecSpec {
  kind: 'exec'
  timeNs: bigint
  pid: number
  tgid: number
  uid: number
  comm: string
  filename: string
  args: string[]
}
interface ExitSpec {
  kind: 'exit'
  timeNs: bigint
  pid: number
  tgid: number
  uid: number
  comm: string
  exitCode: number
  signal: number
  durationNs: bigint
}
type EventSpec = ExecSpec | ExitSpec
interface BatchSpec {
  node: string
  bootId: string
  batchId: string
  sequence: bigint
  events: EventSpec[]
}

const u64 = (n: bigint) => Long.fromString(n.toString(), true)

/** The record the test writes, field by field, from its own spec. */
function encode(b: BatchSpec): Buffer {
  const task = (e: EventSpec) => ({ pid: e.pid, tgid: e.tgid, ppid: 1, uid: e.uid, comm: e.comm })
  const times = b.events.map((e) => e.timeNs).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
  return Buffer.from(
    v1.EventBatch.encode({
      node: b.node,
      bootId: b.bootId,
      collectorInstanceId: `${b.node}-1`,
      batchId: b.batchId,
      sequence: u64(b.sequence),
      firstTimeNs: u64(times[0] ?? 0n),
      lastTimeNs: u64(times.at(-1) ?? 0n),
      exec: b.events
        .filter((e): e is ExecSpec => e.kind === 'exec')
        .map((e) => ({ timeNs: u64(e.timeNs), task: task(e), filename: e.filename, args: e.args })),
      exit: b.events
        .filter((e): e is ExitSpec => e.kind === 'exit')
        .map((e) => ({
          timeNs: u64(e.timeNs),
          task: task(e),
          exitCode: e.exitCode,
          signal: e.signal,
          durationNs: u64(e.durationNs),
        })),
    }).finish(),
  )
}

// --- arbitraries -------------------------------------------------------------------------

const text = fc.string({ unit: 'grapheme', maxLength: 24 })
/** Events as a collector writes them: plausible values, distinct tgids per batch. */
const plainEvent = (tgid: number): fc.Arbitrary<EventSpec> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('exec' as const),
      timeNs: fc.bigInt(NOW_NS - 10n ** 12n, NOW_NS),
      pid: fc.constant(tgid),
      tgid: fc.constant(tgid),
      uid: fc.nat(65_535),
      comm: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 15 }),
      // An exec names what ran: without filename and args it is invalid (batch-sql.ts).
      filename: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }),
      args: fc.array(text, { maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant('exit' as const),
      timeNs: fc.bigInt(NOW_NS - 10n ** 12n, NOW_NS),
      pid: fc.constant(tgid),
      tgid: fc.constant(tgid),
      uid: fc.nat(65_535),
      comm: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 15 }),
      exitCode: fc.integer({ min: 0, max: 255 }),
      signal: fc.integer({ min: 0, max: 64 }),
      durationNs: fc.bigInt(0n, 10n ** 12n),
    }),
  )

const plainBatch: fc.Arbitrary<BatchSpec> = fc
  .record({
    bootId: fc.uuid(),
    batchId: fc.uuid(),
    sequence: fc.bigInt(0n, 10_000n),
    n: fc.integer({ min: 1, max: 6 }),
    tgid0: fc.integer({ min: 2, max: 4_000_000 }),
  })
  .chain(({ n, tgid0, ...h }) =>
    fc
      .tuple(...Array.from({ length: n }, (_, i) => plainEvent(tgid0 + i)))
      .map((events) => ({ node: 'node-fuzz', ...h, events })),
  )

/** Extreme values (the garbage list and more), each field plain or extreme. */
const edgeU64 = fc.oneof(
  fc.constantFrom(0n, 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, U64_MAX),
  fc.bigInt(NOW_NS - 10n ** 12n, NOW_NS),
)
const recent = fc.bigInt(NOW_NS - 10n ** 12n, NOW_NS)
const edgeU32 = fc.constantFrom(0, 1, 255, 256, 65_535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1)
const either = <T>(plain: fc.Arbitrary<T>, edge: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: plain, weight: 3 }, { arbitrary: edge, weight: 1 })
const edgeText = fc.oneof(
  fc.constant(''),
  fc.string({ unit: 'grapheme', minLength: 1000, maxLength: 5000 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
)
const someText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 })
const edgeEvent: fc.Arbitrary<EventSpec> = fc.oneof(
  fc.record({
    kind: fc.constant('exec' as const),
    timeNs: either(recent, edgeU64),
    pid: either(fc.integer({ min: 2, max: 4_000_000 }), edgeU32),
    tgid: either(fc.integer({ min: 2, max: 4_000_000 }), edgeU32),
    uid: either(fc.nat(65_535), edgeU32),
    comm: either(someText, edgeText),
    filename: either(someText, edgeText),
    args: either(
      fc.array(someText, { maxLength: 4 }),
      fc.oneof(
        fc.array(edgeText, { maxLength: 4 }),
        fc.array(fc.constantFrom('', 'a'), { minLength: 1000, maxLength: 20_000 }),
      ),
    ),
  }),
  fc.record({
    kind: fc.constant('exit' as const),
    timeNs: either(recent, edgeU64),
    pid: either(fc.integer({ min: 2, max: 4_000_000 }), edgeU32),
    tgid: either(fc.integer({ min: 2, max: 4_000_000 }), edgeU32),
    uid: either(fc.nat(65_535), edgeU32),
    comm: either(someText, edgeText),
    exitCode: either(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(-1, -(2 ** 31), 2 ** 31 - 1, 256),
    ),
    signal: either(fc.integer({ min: 0, max: 64 }), edgeU32),
    durationNs: either(fc.bigInt(0n, 10n ** 12n), edgeU64),
  }),
)
const edgeBatch: fc.Arbitrary<BatchSpec> = fc.record({
  node: either(fc.constant('node-fuzz'), fc.constantFrom('', 'n'.repeat(300))),
  bootId: fc.uuid(),
  batchId: fc.uuid(),
  sequence: either(fc.bigInt(0n, 10_000n), fc.constantFrom(2n ** 53n - 1n, U64_MAX)),
  events: fc.array(edgeEvent, { minLength: 1, maxLength: 3 }),
})

const edit = fc.record({
  op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'cut'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
})
type Edit = { op: string; at: number; byte: number }

function mutate(bytes: Buffer, edits: readonly Edit[]): Buffer {
  let b = [...bytes]
  for (const e of edits) {
    const at = e.at % (b.length + 1)
    if (e.op === 'flip' && at < b.length) b[at]! ^= 1 << (e.byte & 7)
    if (e.op === 'set' && at < b.length) b[at] = e.byte
    if (e.op === 'insert') b.splice(at, 0, e.byte)
    if (e.op === 'delete') b.splice(at, 1)
    if (e.op === 'cut') b = b.slice(0, at)
  }
  return Buffer.from(b)
}

/** Any input a decoder may meet: random bytes, or a valid batch as is, cut or edited. */
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)),
  plainBatch.map(encode),
  fc
    .tuple(plainBatch.map(encode), fc.array(edit, { minLength: 1, maxLength: 6 }))
    .map(([b, e]) => mutate(b, e)),
)

const stats = {
  decoderCases: 0,
  headers: 0,
  undecodable: 0,
  slowestDecodeMs: 0,
  liveTailCases: 0,
  blocks: 0,
  records: 0,
  stored: 0,
  deadLetters: 0,
  edgeStored: 0,
  edgeDeadLetters: 0,
  slowestBlockMs: 0,
}
const reasons: Record<string, number> = {}

describe('fuzzing the protobuf batch path', {
  timeout: fuzzProfile.soak ? 4 * 3_600_000 : 120_000,
}, () => {
  const runs = (ci: number, soak: number) => ({
    numRuns: fuzzProfile.cases(ci, soak),
    seed: fuzzProfile.seed,
  })

  it('readBatchHeader: a header or BATCH_UNDECODABLE, for any bytes', () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        const started = performance.now()
        stats.decoderCases++
        try {
          const h = readBatchHeader(bytes)
          stats.headers++
          // Each counted event took at least two bytes of the input (a tag and a length).
          assert.ok(h.total * 2 <= bytes.length, `${h.total} events in ${bytes.length} bytes`)
          assert.ok(h.sequence >= 0n && h.sequence <= U64_MAX)
        } catch (err) {
          assert.ok(err instanceof EbbflowError, `threw ${(err as Error)?.name}: ${err}`)
          assert.equal(err.code, 'BATCH_UNDECODABLE')
          assert.equal(err.retriable, false)
          stats.undecodable++
        }
        const ms = performance.now() - started
        stats.slowestDecodeMs = Math.max(stats.slowestDecodeMs, ms)
        assert.ok(ms < DECODE_BOUND_MS, `one header took ${ms.toFixed(1)} ms`)
      }),
      runs(2000, 1_000_000),
    )
  })

  it('readBatchHeader reads back what the test wrote', () => {
    fc.assert(
      fc.property(plainBatch, (b) => {
        const h = readBatchHeader(encode(b))
        assert.equal(h.node, b.node)
        assert.equal(h.bootId, b.bootId)
        assert.equal(h.batchId, b.batchId)
        assert.equal(h.sequence, b.sequence)
        assert.equal(h.events.exec, b.events.filter((e) => e.kind === 'exec').length)
        assert.equal(h.events.exit, b.events.filter((e) => e.kind === 'exit').length)
        assert.equal(h.total, b.events.length)
      }),
      runs(300, 100_000),
    )
  })

  it('readBatchHeader: groups nested a million deep are BATCH_UNDECODABLE, not a stack overflow', () => {
    // Field 100, wire type 3 (start group), over and over: protobufjs skips groups by recursion.
    const bytes = Buffer.alloc(2_000_000)
    for (let i = 0; i < bytes.length; i += 2) bytes.set([0xa3, 0x06], i)
    assert.throws(() => readBatchHeader(bytes), { code: 'BATCH_UNDECODABLE' })
  })

  it('decodeEventBatch (the live tail): a batch or an Error, for any bytes', () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        stats.liveTailCases++
        const started = performance.now()
        try {
          decodeEventBatch(bytes)
        } catch (err) {
          assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`)
        }
        const ms = performance.now() - started
        assert.ok(ms < DECODE_BOUND_MS, `one batch took ${ms.toFixed(1)} ms`)
      }),
      runs(500, 200_000),
    )
  })

  describe('through the ClickHouse route into chDB', () => {
    let dir: string
    let store: ChdbStore
    let ingestor: Ingestor
    const letters: DeadLetter[] = []

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ebbflow-fuzz-batches-'))
      store = await ChdbStore.open(dir)
      await migrate(store, { retentionDays: 30 })
      const table = new StoreDeadLetters(store)
      // The dead letters as the store keeps them, and each one seen by the test.
      const sink: DeadLetterSink = {
        async write(ls) {
          letters.push(...ls)
          await table.write(ls)
        },
        async close() {},
      }
      // One ingester and store for every case: opening chDB per case would dominate.
      ingestor = new Ingestor({
        store,
        deadLetters: sink,
        metrics: new IngestMetrics(),
        logger: createLogger('fuzz', 'silent'),
        source: 'fuzz',
      })
    })
    after(async () => {
      await store?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    let offset = 0
    const record = (value: Buffer | null): InRecord => ({
      topic: TOPICS.exec,
      partition: 0,
      offset: String(offset++),
      key: null,
      value,
    })

    /** Runs one block: every record stored or dead-lettered with a reason, within the bound. */
    async function block(records: InRecord[]) {
      letters.length = 0
      const started = performance.now()
      // A rejection here is a retry loop in a consumer: a retriable error for bad records.
      const result = await ingestor.ingestBlock(records, `fuzz-${offset}`)
      const ms = performance.now() - started
      stats.blocks++
      stats.records += records.length
      stats.stored += result.stored
      stats.deadLetters += result.deadLetters
      stats.slowestBlockMs = Math.max(stats.slowestBlockMs, ms)
      assert.ok(ms < BLOCK_BOUND_MS, `one block took ${ms.toFixed(0)} ms`)
      assert.equal(result.stored + result.deadLetters, records.length)
      assert.equal(letters.length, result.deadLetters)
      for (const l of letters) {
        reasons[l.reason] = (reasons[l.reason] ?? 0) + 1
        assert.ok(l.error.length > 0, `${l.reason} without a reason`)
      }
      const dead = new Set(letters.map((l) => l.record))
      assert.equal(new Set(letters.map((l) => l.record)).size, letters.length, 'a record twice')
      for (const l of letters) assert.ok(records.includes(l.record), 'a letter for no record')
      return { result, dead }
    }

    type Row = {
      boot_id: string
      kind: string
      tgid: number
      pid: number
      uid: number
      time: string
      comm: string
      filename: string
      args: string[]
      exit_code: number
      signal: number
      duration_ns: string
    }
    async function rowsOf(bootIds: string[]): Promise<Row[]> {
      if (bootIds.length === 0) return []
      return store.query<Row>(
        `SELECT boot_id, toString(kind) AS kind, tgid, pid, uid,
                toString(toUnixTimestamp64Nano(time)) AS time, comm, filename, args,
                exit_code, signal, toString(duration_ns) AS duration_ns
         FROM ebbflow.process_events WHERE boot_id IN {ids:Array(String)}`,
        { ids: bootIds },
      )
    }

    /** The rows an event must become: the test's own spec, column by column. */
    function expected(b: BatchSpec): string[] {
      return b.events
        .map((e) =>
          JSON.stringify({
            boot_id: b.bootId,
            kind: e.kind,
            tgid: e.tgid,
            pid: e.pid,
            uid: e.uid,
            time: e.timeNs.toString(),
            // The bytes on the wire: UTF-8, a lone surrogate written as U+FFFD.
            comm: e.comm.toWellFormed(),
            ...(e.kind === 'exec'
              ? { filename: e.filename.toWellFormed(), args: e.args.map((a) => a.toWellFormed()) }
              : { exit_code: e.exitCode, signal: e.signal, duration_ns: e.durationNs.toString() }),
          }),
        )
        .sort()
    }
    function actual(rows: Row[], bootId: string): string[] {
      return rows
        .filter((r) => r.boot_id === bootId)
        .map((r) =>
          JSON.stringify({
            boot_id: r.boot_id,
            kind: r.kind,
            tgid: Number(r.tgid),
            pid: Number(r.pid),
            uid: Number(r.uid),
            time: r.time,
            comm: r.comm,
            ...(r.kind === 'exec'
              ? { filename: r.filename, args: r.args }
              : {
                  exit_code: Number(r.exit_code),
                  signal: Number(r.signal),
                  duration_ns: r.duration_ns,
                }),
          }),
        )
        .sort()
    }

    it('a batch whose times ClickHouse cannot store is dead-lettered; the block goes on', async () => {
      // Found by the extreme-values property: a header time under 10^9 s ("4.294967296") or past
      // DateTime64(9) made the batch ledger's insert fail after the block's rows were stored,
      // for good; the Kafka ingester retried the block forever and its partition stalled.
      const ok = fc.sample(plainBatch, { numRuns: 1, seed: fuzzProfile.seed })[0]!
      const at = (timeNs: bigint): BatchSpec => ({
        ...ok,
        bootId: `${ok.bootId}-${timeNs}`,
        batchId: `${ok.batchId}-${timeNs}`,
        events: ok.events.map((e) => ({ ...e, timeNs })),
      })
      const odd = [at(2n ** 32n), at(2n ** 63n), at(U64_MAX)]
      const good = record(encode(ok))
      const bad = odd.map((b) => record(encode(b)))
      const { dead } = await block([bad[0]!, good, ...bad.slice(1)])
      assert.ok(!dead.has(good))
      for (const r of bad) {
        const l = letters.find((x) => x.record === r)
        assert.equal(l?.reason, 'invalid_event', `${l?.reason}: ${l?.error}`)
        assert.match(l.error, /out of range/)
      }
      const rows = await rowsOf([ok.bootId, ...odd.map((b) => b.bootId)])
      assert.deepEqual(actual(rows, ok.bootId), expected(ok))
      assert.equal(rows.length, ok.events.length, 'rows of a dead-lettered batch')
    })

    it('mutated blocks: each record stored or dead-lettered, valid ones stored exactly', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(plainBatch, { minLength: 1, maxLength: 3 }),
          fc.array(
            fc.oneof(
              fc.tuple(plainBatch, fc.array(edit, { minLength: 1, maxLength: 4 })),
              fc.uint8Array({ maxLength: 256 }),
            ),
            { minLength: 1, maxLength: 3 },
          ),
          fc.nat(),
          async (valid, bad, shuffle) => {
            const good = valid.map((b) => ({ spec: b, rec: record(encode(b)) }))
            const junk = bad.map((x) =>
              record(x instanceof Uint8Array ? Buffer.from(x) : mutate(encode(x[0]), x[1])),
            )
            const records = [...good.map((g) => g.rec), ...junk]
            // The valid records somewhere among the bad ones, not always first.
            const turn = shuffle % records.length
            const { dead } = await block([...records.slice(turn), ...records.slice(0, turn)])
            for (const g of good)
              assert.ok(
                !dead.has(g.rec),
                `a valid record was dead-lettered: ${letters.find((l) => l.record === g.rec)?.error}`,
              )
            const rows = await rowsOf(good.map((g) => g.spec.bootId))
            for (const g of good)
              assert.deepEqual(actual(rows, g.spec.bootId), expected(g.spec), g.spec.bootId)
          },
        ),
        { ...runs(6, 500), endOnFailure: true },
      )
    })

    it('extreme field values: stored exactly as written, or dead-lettered with a reason', async () => {
      await fc.assert(
        fc.asyncProperty(edgeBatch, async (b) => {
          const rec = record(encode(b))
          const { dead } = await block([rec])
          const rows = await rowsOf([b.bootId])
          if (dead.has(rec)) {
            stats.edgeDeadLetters++
            assert.deepEqual(rows, [], 'a dead-lettered record left rows')
          } else {
            stats.edgeStored++
            assert.deepEqual(actual(rows, b.bootId), expected(b))
          }
        }),
        { ...runs(8, 500), endOnFailure: true },
      )
      fuzzProfile.report('protobuf-batches', { ...stats, reasons, crashes: 0 })
    })
  })
})
