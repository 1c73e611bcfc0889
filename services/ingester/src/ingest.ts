// The ingester's core, shared by the Kafka consumer, the in-process queue and the serverless
// handler: decode a block of records, send what cannot be stored to the dead letters, insert
// the rest with one deduplication token per block, and say what happened. Storing a block
// twice under the same token adds no rows, which is what makes redelivery harmless.
import type { Logger } from '@ebbflow/common'
import {
  appendRows,
  emptyRows,
  insertRows,
  type RowsByTable,
  type Store,
  TABLES,
  type Table,
  wallTime,
} from '@ebbflow/common/store/index'
import { batchEvents, type DecodedBatch, TOPICS } from '@ebbflow/common/wire'
import type { DeadLetter, DeadLetterSink } from './dead-letters.ts'
import { headerOf, recordBatches } from './ledger.ts'
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
}

interface Decodedrecord {
  record: InRecord
  batch: DecodedBatch
}

function zeroRows(): Record<Table, number> {
  return Object.fromEntries(TABLES.map((t) => [t, 0])) as Record<Table, number>
}

const FAMILY_OF_TOPIC = new Map(Object.entries(TOPICS).map(([family, topic]) => [topic, family]))

/**
 * The batch's rows, and one collector_stats row saying how far behind the batch's newest event
 * the ingester took it (metric ingest_lag_ms): the lag of the pipeline per node and family, kept
 * with the data it describes.
 */
function rowsOf(record: InRecord, batch: DecodedBatch, nowNs: bigint): RowsByTable {
  const ctx = { offsetNs: batch.offsetNs, node: batch.node, bootId: batch.bootId }
  const rows = appendRows(emptyRows(), batchEvents(batch), ctx)
  if (batch.lastTimeNs > 0n) {
    const lagNs = nowNs - batch.lastTimeNs
    rows.collector_stats.push({
      time: wallTime(0, nowNs),
      node: batch.node,
      boot_id: batch.bootId,
      metric: 'ingest_lag_ms',
      family: FAMILY_OF_TOPIC.get(record.topic) ?? '',
      reason: '',
      value: lagNs > 0n ? Number(lagNs / 1_000_000n) : 0,
    })
  }
  return rows
}

function merge(parts: readonly RowsByTable[]): RowsByTable {
  if (parts.length === 1) return parts[0]!
  const out = emptyRows()
  for (const p of parts) for (const t of TABLES) for (const row of p[t]) out[t].push(row)
  return out
}

export class Ingestor {
  private readonly o: IngestorOptions

  constructor(options: IngestorOptions) {
    this.o = options
  }

  /**
   * Stores one block. `token` names the block: the same records under the same token are
   * stored once, however often this runs. Rejects only on a store failure a retry may cure
   * (`retriable`) or a dead-letter sink that is down; the caller retries the whole block.
   */
  async ingestBlock(
    records: readonly InRecord[],
    token: string,
    decoded: readonly Decoded[] = records.map(decodeRecord),
  ): Promise<BlockResult> {
    const letters: DeadLetter[] = []
    const good: Decodedrecord[] = []
    for (const [i, record] of records.entries()) {
      const d = decoded[i]!
      if (d.ok) good.push({ record, batch: d.batch })
      else letters.push(this.letter(record, d.reason, d.error))
    }
    const nowNs = BigInt(Date.now()) * 1_000_000n
    const rowsByRecord = good.map((g) => rowsOf(g.record, g.batch, nowNs))
    const rows = zeroRows()
    const rejected = await this.insert(good, rowsByRecord, token, rows)
    for (const r of rejected) letters.push(r)
    const rejectedSet = new Set(rejected.map((l) => l.record))
    // The accounting of what is now stored (ledger.ts): after the rows, under the block's token.
    await recordBatches(
      this.o.store,
      good.filter((g) => !rejectedSet.has(g.record)).map((g) => headerOf(g.record.topic, g.batch)),
      token,
    )
    // Dead letters are durable before the caller commits anything past them.
    await this.o.deadLetters.write(letters)
    let newestEventNs = 0n
    for (const g of good) {
      if (rejectedSet.has(g.record)) continue
      if (g.batch.lastTimeNs > newestEventNs) newestEventNs = g.batch.lastTimeNs
      this.o.metrics.records.inc({ topic: g.record.topic, outcome: 'stored' })
    }
    for (const l of letters) {
      this.o.metrics.records.inc({ topic: l.record.topic, outcome: 'dead_letter' })
      this.o.metrics.deadLetters.inc({ reason: l.reason })
    }
    for (const t of TABLES) if (rows[t] > 0) this.o.metrics.rows.inc({ table: t }, rows[t])
    if (newestEventNs > 0n)
      this.o.metrics.eventAgeSeconds.observe(
        Math.max(0, Date.now() / 1000 - Number(newestEventNs / 1_000_000n) / 1000),
      )
    return {
      records: records.length,
      stored: good.length - rejected.length,
      deadLetters: letters.length,
      rows,
      newestEventNs,
    }
  }

  /**
   * Inserts the records' rows under `token`. A store that refuses the rows for good (a value
   * a column cannot take) is narrowed down by halves, each half under a token derived from
   * its parent's, so a retry splits the same way; the single records it still refuses come
   * back as dead letters.
   */
  private async insert(
    good: readonly Decodedrecord[],
    rowsByRecord: readonly RowsByTable[],
    token: string,
    totals: Record<Table, number>,
  ): Promise<DeadLetter[]> {
    if (good.length === 0) return []
    const stop = this.o.metrics.insertSeconds.startTimer()
    try {
      const counts = await insertRows(this.o.store, merge(rowsByRecord), { dedupToken: token })
      stop()
      for (const t of TABLES) totals[t] += counts[t]
      return []
    } catch (err) {
      const retriable = (err as { retriable?: boolean }).retriable === true
      this.o.metrics.insertFailures.inc({ retriable: String(retriable) })
      if (retriable) throw err
      if (good.length === 1) {
        this.o.logger.warn(
          { err, topic: good[0]!.record.topic, offset: good[0]!.record.offset },
          'the store refused a record; it goes to the dead letters',
        )
        return [this.letter(good[0]!.record, 'store_rejected', (err as Error).message)]
      }
      const half = Math.ceil(good.length / 2)
      return [
        ...(await this.insert(
          good.slice(0, half),
          rowsByRecord.slice(0, half),
          `${token}/0`,
          totals,
        )),
        ...(await this.insert(good.slice(half), rowsByRecord.slice(half), `${token}/1`, totals)),
      ]
    }
  }

  private letter(record: InRecord, reason: DeadLetterReason, error: string): DeadLetter {
    return { record, reason, error, source: this.o.source }
  }
}
