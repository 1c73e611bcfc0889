// The ingester's core, shared by the Kafka consumer, the in-process queue and the serverless
// handler: read each record's header, hand the block's record bytes to ClickHouse, which
// checks every event (store/batch-sql.ts validationStatement) and unnests each family into its
// table (one INSERT … SELECT per table), send what cannot be stored to the dead letters, and
// say what happened. One deduplication token per block and table: storing a block twice under
// the same token adds no rows, which is what makes redelivery harmless.
import { EbbflowError, type Logger } from '@ebbflow/common'
import type { BatchHeader } from '@ebbflow/common/batch-header'
import { nsToEpochText } from '@ebbflow/common/event-time'
import { TOPICS } from '@ebbflow/common/wire'
import { v1Types } from '@ebbflow/proto'
import {
  type BatchInput,
  checkedInsertStatement,
  FAMILY_ROUTES,
  insertStatement,
  type Store,
  storeWide,
  TABLES,
  type Table,
  validationStatement,
} from '@ebbflow/store'
import type { DeadLetter, DeadLetterSink } from './dead-letters.ts'
import { type FaultPoint, type Faults, NO_FAULTS } from './faults.ts'
import { type LedgerEntry, recordBatches } from './ledger.ts'
import type { IngestMetrics } from './metrics.ts'
import { type DeadLetterReason, type Decoded, decodeRecord, type InRecord } from './records.ts'

export interface BlockResult {
  records: number
  stored: number
  deadLetters: number
  rows: Record<Table, number>
  /** Wall-clock ns of the newest event stored (0 when none). */
  newestEventNs: bigint
}

export interface IngestorOptions {
  store: Store
  deadLetters: DeadLetterSink
  metrics: IngestMetrics
  logger: Logger
  /** Names the path in dead letters: kafka, in-process, knative, msk. */
  source: string
  /** Named fault points (faults.ts). Default: none armed. */
  faults?: Faults
  /**
   * Keep each block's bookkeeping rows (ingest_lag, batch ledger) until `flushBookkeeping()`
   * writes those of several blocks at once: two statements per interval instead of two per
   * block, each ~20–40 ms of chDB's CPU however few its rows (bench/up-latency/per-block.ts).
   * For the in-process queue only: it is never redelivered and dies with the process, so a
   * crash costs the ledger rows of at most one interval (those batches then look missing
   * though stored), where the queue itself loses everything it held. Default: false.
   */
  deferBookkeeping?: boolean
}

interface Bookkeeping {
  lag: Record<string, unknown>[]
  ledger: LedgerEntry[]
  /** The first block's token and the blocks held: a retried flush writes under the same. */
  token: string
  blocks: number
  /** Date.now() when the first block's rows were kept. */
  since: number
}

/** A record whose header was read: the one place a block's decoded headers are all at hand. */
export interface HeaderedRecord {
  record: InRecord
  header: BatchHeader
}

function zeroRows(): Record<Table, number> {
  return Object.fromEntries(TABLES.map((t) => [t, 0])) as Record<Table, number>
}

const FAMILY_OF_TOPIC = new Map(Object.entries(TOPICS).map(([family, topic]) => [topic, family]))

/** Rows each record brings to each table, from its header's event counts. */
function rowsOf(records: readonly HeaderedRecord[]): Record<Table, number> {
  const rows = zeroRows()
  for (const { header } of records)
    for (const r of FAMILY_ROUTES) rows[r.table] += header.events[r.field] ?? 0
  return rows
}

/**
 * The records' values as ClickHouse's length-delimited `Protobuf` input (varint size, bytes),
 * as chunks in order: the store hands them on as they are (one `writev`, an HTTP body), so a
 * block's bytes are not copied once more into one buffer.
 */
export function lengthDelimited(values: readonly Buffer[]): Buffer[] {
  // Every size prefix in one buffer (at most 5 bytes for a 32-bit length), viewed per record.
  const prefixes = Buffer.allocUnsafe(values.length * 5)
  const parts: Buffer[] = []
  let at = 0
  for (const v of values) {
    const start = at
    let n = v.length
    while (n > 0x7f) {
      prefixes[at++] = (n & 0x7f) | 0x80
      n >>>= 7
    }
    prefixes[at++] = n
    parts.push(prefixes.subarray(start, at), v)
  }
  return parts
}

/** Tables with a checked insert (every table records fill); the probe's source is never run. */
const CHECKED_TABLES = new Set(
  TABLES.filter((t) => checkedInsertStatement(t, () => '') !== undefined),
)

const retriable = (err: unknown) => (err as { retriable?: boolean }).retriable === true

/**
 * Errors no record causes: a store that cannot write now (`retriable`) or lacks what every block
 * needs (`storeWide`: a missing table, refused credentials). The block goes back whole to the
 * caller; bisecting would blame each record and dead-letter the lot.
 */
const notTheRecords = (err: unknown) => retriable(err) || storeWide(err)

/**
 * Why protobuf cannot read a record as a whole EventBatch (events included), or undefined when
 * it can. Used only once ClickHouse failed to parse a block: it names the records a bisection
 * would find (truncated fields, wire types protobuf does not have) in one pass over the block
 * instead of about log2(block) failed statements per record, each ~0.5 s or more on chDB.
 */
function unreadable(value: Buffer): string | undefined {
  try {
    v1Types.EventBatch.decode(value)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

export class Ingestor {
  private readonly o: IngestorOptions

  constructor(options: IngestorOptions) {
    this.o = options
  }

  /** Passes a named fault point (also for the sources that drive this ingester). */
  fault(point: FaultPoint): Promise<void> {
    return (this.o.faults ?? NO_FAULTS).pass(point)
  }

  /**
   * Stores one block. `token` names the block: the same records under the same token are
   * stored once, however often this runs. Rejects only on a store failure a retry may cure
   * (`retriable`), a store-wide one no retry cures (`storeWide`: someone has to fix the store)
   * or a dead-letter sink that is down; the caller retries the whole block, committing nothing.
   */
  async ingestBlock(
    records: readonly InRecord[],
    token: string,
    decoded: readonly Decoded[] = records.map(decodeRecord),
  ): Promise<BlockResult> {
    await this.fault('ingest.before-insert')
    const letters: DeadLetter[] = []
    const good: HeaderedRecord[] = []
    for (const [i, record] of records.entries()) {
      const d = decoded[i]!
      if (d.ok) good.push({ record, header: d.header })
      else letters.push(this.letter(record, d.reason, d.error))
    }
    const rows = zeroRows()
    const rejected = await this.store(good, token, rows)
    const rowsStoredAt = Date.now()
    if (TABLES.some((t) => rows[t] > 0)) await this.fault('ingest.between-tables')
    for (const r of rejected) letters.push(r)
    const rejectedSet = new Set(rejected.map((l) => l.record))
    const stored = good.filter((g) => !rejectedSet.has(g.record))
    const oldest = stored.map((g) => g.header.firstTimeNs)
    this.o.metrics.stage('stored', oldest, rowsStoredAt)
    const lag = this.lagRows(stored)
    rows.collector_stats += lag.length
    // The accounting of what is now stored (ledger.ts): after the rows, under the block's token.
    const ledger = stored.map((g) => ({ topic: g.record.topic, header: g.header }))
    if (!this.o.deferBookkeeping) await this.writeBookkeeping(lag, ledger, token)
    else if (lag.length > 0 || ledger.length > 0) {
      this.held ??= { lag: [], ledger: [], token, blocks: 0, since: Date.now() }
      this.held.lag.push(...lag)
      this.held.ledger.push(...ledger)
      this.held.blocks++
    }
    // Dead letters are durable before the caller commits anything past them.
    await this.o.deadLetters.write(letters)
    let newestEventNs = 0n
    for (const g of stored) {
      if (g.header.lastTimeNs > newestEventNs) newestEventNs = g.header.lastTimeNs
      this.o.metrics.records.inc({ topic: g.record.topic, outcome: 'stored' })
    }
    for (const l of letters) {
      this.o.metrics.records.inc({ topic: l.record.topic, outcome: 'dead_letter' })
      this.o.metrics.deadLetters.inc({ reason: l.reason })
    }
    for (const t of TABLES) if (rows[t] > 0) this.o.metrics.rows.inc({ table: t }, rows[t])
    this.o.metrics.stage('done', oldest)
    if (newestEventNs > 0n)
      this.o.metrics.eventAgeSeconds.observe(
        Math.max(0, Date.now() / 1000 - Number(newestEventNs / 1_000_000n) / 1000),
      )
    return {
      records: records.length,
      stored: stored.length,
      deadLetters: letters.length,
      rows,
      newestEventNs,
    }
  }

  /**
   * Checks and inserts the records under `token`. Records whose events are out of range come
   * back as dead letters with ClickHouse's reasons; a block ClickHouse cannot parse, or whose
   * rows a table refuses for good, is narrowed down by halves, each half under a token derived
   * from its parent's, so a retry splits the same way; the single records it still refuses
   * come back as dead letters. Tables that took a block's rows before another refused them
   * (`done`) are left out of its halves: their tokens differ, so nothing else would stop the
   * same rows from being stored twice. A failure a retry may cure (`retriable`) or a store-wide
   * one (`storeWide`) rejects.
   */
  private async store(
    good: readonly HeaderedRecord[],
    token: string,
    totals: Record<Table, number>,
    done: ReadonlySet<Table> = new Set(),
    depth = 0,
  ): Promise<DeadLetter[]> {
    if (good.length === 0) return []
    const store = this.o.store
    if (!store.batchInput)
      throw new EbbflowError('STORE_NO_BATCH_INPUT', 'this store cannot take EventBatch records')
    let input: BatchInput | undefined
    let stage: 'check' | 'insert' = 'insert'
    // Tables that took this block's rows before another table refused them. The halves of a
    // bisection carry other tokens, so inserting their rows there again would store them twice.
    const inserted: Table[] = []
    try {
      input = await store.batchInput(lengthDelimited(good.map((g) => g.record.value!)))
      // The usual block is valid: its first table is inserted by a statement that reads the
      // block once, checks every record first and throws before writing when one fails. Only then
      // does the separate check pass run, to say which records fail and why.
      const all = rowsOf(good)
      let checked = input.checkedInsert
        ? TABLES.find((t) => all[t] > 0 && CHECKED_TABLES.has(t) && !done.has(t))
        : undefined
      const stop = this.o.metrics.insertSeconds.startTimer()
      const present = FAMILY_ROUTES.filter((r) =>
        good.some((g) => (g.header.events[r.field] ?? 0) > 0),
      ).map((r) => r.field)
      if (checked) {
        const table = checked
        try {
          await input.insert((source) => checkedInsertStatement(table, source, present)!, {
            dedupToken: `${token}:${table}`,
          })
          inserted.push(table)
          totals[table] += all[table]
        } catch (err) {
          if (notTheRecords(err)) throw err
          checked = undefined
        }
      }
      const letters: DeadLetter[] = []
      let keep = good
      if (!checked) {
        stage = 'check'
        const bad = await input.query<{ record: string; untimed: string; problems: string[] }>(
          validationStatement,
        )
        if (bad.length > 0) {
          const byIndex = new Map(bad.map((b) => [Number(b.record), b]))
          keep = good.filter((_, i) => !byIndex.has(i))
          for (const [i, b] of byIndex) {
            const untimed = Number(b.untimed)
            letters.push(
              untimed > 0
                ? this.letter(
                    good[i]!.record,
                    'invalid_batch',
                    `invalid EventBatch: ${untimed} events without a timestamp`,
                  )
                : this.letter(
                    good[i]!.record,
                    'invalid_event',
                    `out of range: ${b.problems.join('; ')}`,
                  ),
            )
          }
          await input.release()
          input = undefined
          if (keep.length === 0) return letters
          input = await store.batchInput(lengthDelimited(keep.map((g) => g.record.value!)))
        }
      }
      stage = 'insert'
      const rows = rowsOf(keep)
      for (const table of TABLES) {
        if (rows[table] === 0 || done.has(table) || table === checked) continue
        if (inserted.length > 0) await this.fault('ingest.between-tables')
        await input.insert((source) => insertStatement(table, source, present), {
          dedupToken: `${token}:${table}`,
        })
        inserted.push(table)
        totals[table] += rows[table]
      }
      stop()
      return letters
    } catch (err) {
      if (stage === 'insert')
        this.o.metrics.insertFailures.inc({ retriable: String(retriable(err)) })
      if (notTheRecords(err)) throw err
      const reason: DeadLetterReason = stage === 'check' ? 'undecodable' : 'store_rejected'
      const skip = new Set([...done, ...inserted])
      if (good.length === 1) {
        // Its rows in the tables that took them before stay there: ClickHouse cannot take an
        // insert back. The letter says which, so a replay of it knows what it would repeat.
        const mine = rowsOf(good)
        const kept = TABLES.filter((t) => skip.has(t) && mine[t] > 0)
        const note = kept.length > 0 ? ` (its rows in ${kept.join(', ')} were stored)` : ''
        this.o.logger.warn(
          { err, topic: good[0]!.record.topic, offset: good[0]!.record.offset, reason, kept },
          'the store refused a record; it goes to the dead letters',
        )
        return [this.letter(good[0]!.record, reason, `${(err as Error).message}${note}`)]
      }
      await input?.release()
      input = undefined
      if (stage === 'check') {
        // ClickHouse could not parse the block: the records protobuf cannot read either go to
        // the dead letters with its reason, the rest are stored under a token derived from this
        // one (a retry finds the same records); what still fails is bisected below that.
        const found = good.map((g) => unreadable(g.record.value!))
        if (found.some((e) => e !== undefined)) {
          const letters = good.flatMap((g, i) =>
            found[i] === undefined
              ? []
              : [this.letter(g.record, 'undecodable', `not an ebbflow.v1.EventBatch: ${found[i]}`)],
          )
          const rest = good.filter((_, i) => found[i] === undefined)
          this.o.metrics.unreadable.inc(letters.length)
          return [...letters, ...(await this.store(rest, `${token}/p`, totals, skip, depth))]
        }
      }
      const half = Math.ceil(good.length / 2)
      // Timed once, at the block that started it: the halves' own splits are inside this time.
      const started = performance.now()
      const letters = [
        ...(await this.store(good.slice(0, half), `${token}/0`, totals, skip, depth + 1)),
        ...(await this.store(good.slice(half), `${token}/1`, totals, skip, depth + 1)),
      ]
      if (depth === 0) {
        this.o.metrics.bisections.inc()
        this.o.metrics.bisectSeconds.inc((performance.now() - started) / 1000)
      }
      return letters
    } finally {
      await input?.release()
    }
  }

  /** When the oldest bookkeeping held back was kept (Date.now()), or undefined when none is. */
  get bookkeepingSince(): number | undefined {
    return (this.unwritten ?? this.held)?.since
  }

  /**
   * Writes the bookkeeping rows `deferBookkeeping` held back, after the rows they describe.
   * Rows whose write failed are written first by the next call, under the same tokens, so a
   * write that half happened (the lag rows, not the ledger) adds nothing twice.
   */
  async flushBookkeeping(): Promise<void> {
    for (;;) {
      const rows = this.unwritten ?? this.held
      if (!rows) return
      if (rows === this.held) {
        this.held = undefined
        this.unwritten = rows
      }
      await this.writeBookkeeping(rows.lag, rows.ledger, `${rows.token}+${rows.blocks}`)
      this.unwritten = undefined
    }
  }

  /** Bookkeeping kept by blocks since the last flush. */
  private held: Bookkeeping | undefined
  /** Bookkeeping a flush took and has not written yet (it failed, or is under way). */
  private unwritten: Bookkeeping | undefined

  private async writeBookkeeping(
    lag: readonly Record<string, unknown>[],
    ledger: readonly LedgerEntry[],
    token: string,
  ): Promise<void> {
    if (lag.length > 0)
      await this.o.store.insert('ebbflow.collector_stats', lag, {
        dedupToken: `${token}:ingest_lag`,
      })
    await recordBatches(this.o.store, ledger, token)
  }

  /**
   * One collector_stats row per stored record saying how far behind the batch's newest event
   * the ingester took it (metric ingest_lag_ms): the lag of the pipeline per node and family,
   * kept with the data it describes. From the headers: one row per record, not per event.
   */
  private lagRows(stored: readonly HeaderedRecord[]): Record<string, unknown>[] {
    const nowNs = BigInt(Date.now()) * 1_000_000n
    return stored
      .filter((g) => g.header.lastTimeNs > 0n)
      .map((g) => {
        const lagNs = nowNs - g.header.lastTimeNs
        return {
          time: nsToEpochText(nowNs),
          node: g.header.node,
          boot_id: g.header.bootId,
          metric: 'ingest_lag_ms',
          family: FAMILY_OF_TOPIC.get(g.record.topic) ?? '',
          reason: '',
          value: lagNs > 0n ? Number(lagNs / 1_000_000n) : 0,
        }
      })
  }

  private letter(record: InRecord, reason: DeadLetterReason, error: string): DeadLetter {
    return { record, reason, error, source: this.o.source }
  }
}
