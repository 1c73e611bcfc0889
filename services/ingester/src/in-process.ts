// The embedded mode's ingester: reads the in-process queue the collector publishes to (same
// EventBatch records as on Kafka) and stores blocks bounded by rows, bytes and time. Nothing
// is redelivered here (the queue lives and dies with the process), so a block's token only has
// to be unique: a store failure a retry can cure is retried, the queue meanwhile backs up into
// the collector's publisher, which counts what it has to drop.
import { randomUUID } from 'node:crypto'
import type { Logger } from '@ebbflow/common'
import type { Ingestor } from './ingest.ts'
import type { IngestMetrics } from './metrics.ts'
import { type Decoded, decodeRecord, type InRecord } from './records.ts'

/** What the in-process transport yields (structurally; the ingester imports no collector). */
export interface QueuedRecord {
  topic: string
  key: string
  value: Buffer
}

export interface InProcessIngesterOptions {
  /** Default: 100,000 events. */
  maxRows?: number
  /** Default: 16 MiB. */
  maxBytes?: number
  /**
   * A block is stored at most this long after its first record arrived, or after its oldest
   * event happened, whichever comes first. Default: 250 ms.
   */
  maxWaitMs?: number
  /**
   * With an Ingestor that defers its bookkeeping (ledger, ingest_lag rows), the longest they
   * are held before being written. Default: 1000 ms.
   */
  bookkeepingMs?: number
}

export interface InProcessStats {
  blocks: number
  records: number
  rows: number
  deadLetters: number
}

const TIMEOUT: unique symbol = Symbol('timeout')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/**
 * `p`, or TIMEOUT once `ms` passed. The timer is cleared when `p` wins: a long wait (the held
 * bookkeeping's, up to bookkeepingMs) must not keep the process alive after the source ended.
 */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<typeof TIMEOUT>((resolve) => {
        timer = setTimeout(resolve, ms, TIMEOUT)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export class InProcessIngester {
  readonly stats: InProcessStats = { blocks: 0, records: 0, rows: 0, deadLetters: 0 }
  private readonly o: Required<InProcessIngesterOptions>
  private readonly ingestor: Ingestor
  private readonly logger: Logger
  private readonly metrics: IngestMetrics | undefined
  private readonly run = randomUUID()
  private readonly offsets = new Map<string, bigint>()
  private stopping = false

  constructor(
    ingestor: Ingestor,
    logger: Logger,
    options: InProcessIngesterOptions = {},
    metrics?: IngestMetrics,
  ) {
    this.ingestor = ingestor
    this.logger = logger
    this.metrics = metrics
    this.o = {
      maxRows: 100_000,
      maxBytes: 16 * 1024 * 1024,
      maxWaitMs: 250,
      bookkeepingMs: 1000,
      ...options,
    }
  }

  /** Consumes until the source ends (the transport closed), storing every record it yields. */
  async consume(source: AsyncIterable<QueuedRecord>): Promise<void> {
    const it = source[Symbol.asyncIterator]()
    let pending: Promise<IteratorResult<QueuedRecord>> | undefined
    let done = false
    while (!done) {
      const records: InRecord[] = []
      const decoded: Decoded[] = []
      let rows = 0
      let bytes = 0
      let deadline = 0
      for (;;) {
        pending ??= it.next()
        // Waiting for a block's first record, the held bookkeeping is the deadline.
        const since = records.length === 0 ? this.ingestor.bookkeepingSince : undefined
        const until = since === undefined ? deadline : since + this.o.bookkeepingMs
        const r =
          records.length === 0 && since === undefined
            ? await pending
            : await within(pending, Math.max(0, until - Date.now()))
        if (r === TIMEOUT) {
          if (records.length > 0) break
          await this.flushBookkeeping()
          continue
        }
        pending = undefined
        if (r.done) {
          done = true
          break
        }
        const record = this.toRecord(r.value)
        const d = decodeRecord(record)
        if (d.ok) this.metrics?.stage('received', [d.header.firstTimeNs])
        records.push(record)
        decoded.push(d)
        if (records.length === 1) deadline = Date.now() + this.o.maxWaitMs
        // Behind (the store took longer than the wait, records queued up meanwhile): their
        // events are already older than the wait, so the block takes what is queued and goes
        // at once, as one larger insert, instead of idling the store for another wait. Idle,
        // the collector's flush keeps events young, and blocks keep their full wait.
        if (d.ok && d.header.firstTimeNs > 0n) {
          const due = Number(d.header.firstTimeNs / 1_000_000n) + this.o.maxWaitMs
          if (due < deadline) deadline = due
        }
        rows += d.ok ? d.events : 0
        bytes += r.value.value.length
        if (rows >= this.o.maxRows || bytes >= this.o.maxBytes) break
      }
      if (records.length > 0) {
        this.metrics?.stage(
          'block',
          decoded.map((d) => (d.ok ? d.header.firstTimeNs : 0n)),
        )
        await this.store(records, decoded)
        const since = this.ingestor.bookkeepingSince
        if (since !== undefined && Date.now() - since >= this.o.bookkeepingMs)
          await this.flushBookkeeping()
      }
    }
    await this.flushBookkeeping()
  }

  /** Gives up retrying a failing store (the records in hand are then lost, and logged). */
  stop(): void {
    this.stopping = true
  }

  private toRecord(q: QueuedRecord): InRecord {
    const offset = this.offsets.get(q.topic) ?? 0n
    this.offsets.set(q.topic, offset + 1n)
    return {
      topic: q.topic,
      partition: 0,
      offset: offset.toString(),
      key: Buffer.from(q.key),
      value: q.value,
    }
  }

  private async store(records: InRecord[], decoded: Decoded[]): Promise<void> {
    const token = `in-process:${this.run}:${this.stats.blocks}`
    await this.retrying(
      'storing a block failed; retrying',
      `stopping with a block the store did not take; its ${records.length} records are lost`,
      async () => {
        const r = await this.ingestor.ingestBlock(records, token, decoded)
        this.stats.blocks++
        this.stats.records += r.records
        this.stats.deadLetters += r.deadLetters
        for (const n of Object.values(r.rows)) this.stats.rows += n
      },
    )
  }

  private flushBookkeeping(): Promise<void> {
    return this.retrying(
      'writing the ledger and lag rows failed; retrying',
      'stopping with ledger and lag rows the store did not take; their batches look missing',
      () => this.ingestor.flushBookkeeping(),
    )
  }

  /** Runs `work` until it succeeds, backing off, or until stop() gives up on the store. */
  private async retrying(failed: string, lost: string, work: () => Promise<void>): Promise<void> {
    let delay = 250
    for (;;) {
      try {
        return await work()
      } catch (err) {
        if (this.stopping) {
          this.logger.error({ err }, lost)
          return
        }
        this.logger.warn({ err, retryInMs: delay }, failed)
        await sleep(delay)
        delay = Math.min(delay * 2, 5000)
      }
    }
  }
}
