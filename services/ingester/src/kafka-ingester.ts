// `ebbflow ingest`: a kafkajs consumer group from the event topics into the store.
//
// Effectively once. Offsets are committed only after a block's rows are stored, so a crash
// repeats a block, never skips one; a repeated block must then add nothing. ClickHouse drops an
// insert whose deduplication token it has seen, so a block is named by its partition and
// offset range — but after a crash the consumer may fetch a different amount and cut a
// different block. So the cut is written down first: before inserting offsets [from, to], the
// ingester commits offset `from` again with the plan `to` in the commit's metadata. A consumer
// that takes the partition over (the same process restarted, or another member after a
// rebalance) reads the plan and cuts its first block at exactly `to`, under the same token:
// stored already, ClickHouse drops it; not stored, it is stored now.
import { EbbflowError, type Logger } from '@ebbflow/common'
import { ensureTopics, registerCodecs } from '@ebbflow/common/kafka'
import { storeWide } from '@ebbflow/store'
import kafkaCodecs, {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaMessage,
  logLevel as kafkaLogLevel,
} from 'kafkajs'
import type { Ingestor } from './ingest.ts'

import type { IngestMetrics } from './metrics.ts'
import { type Decoded, decodeRecord, type InRecord } from './records.ts'

registerCodecs(kafkaCodecs)

export interface KafkaIngesterOptions {
  brokers: string[]
  /** Consumer group. Default: ebbflow-ingester. */
  groupId?: string
  topics: string[]
  /** A block holds at most this many events (rows). Default: 100,000. */
  maxRows?: number
  /** … and at most this many bytes of records. Default: 16 MiB. */
  maxBytes?: number
  /** The broker answers a fetch after this long even with less than `minBytes`: the time bound
   * on a block. Default: 500 ms. */
  maxWaitMs?: number
  /** Default: 1 MiB. */
  minBytes?: number
  /** An insert slower than this is logged as slow (it waits; it never pauses). Default: 2000 ms. */
  slowInsertMs?: number
  /** Partitions processed at once. Default: 2. */
  concurrency?: number
  /** The group's wait for a silent member; heartbeats every third of it. Default: 10 s. */
  sessionTimeoutMs?: number
  /** The wait before joining again after a crash kafkajs does not restart. Default: 1 s. */
  restartDelayMs?: number
  /**
   * How long a store error no retry cures (`storeWide`: a missing table, refused credentials)
   * is retried before the ingester gives up: `failed` then resolves and the process exits for
   * its supervisor to restart it, nothing committed past what is stored. 0: retry for ever.
   * Default: 60 s.
   */
  storeFailureExitMs?: number
  clientId?: string
}

interface Plan {
  from: string
  to: string
}

const PLAN_VERSION = 1

function encodePlan(to: string): string {
  return JSON.stringify({ v: PLAN_VERSION, to })
}

function decodePlan(from: string, metadata: string | null | undefined): Plan | undefined {
  if (!metadata) return undefined
  try {
    const p = JSON.parse(metadata) as { v?: number; to?: unknown }
    if (p.v === PLAN_VERSION && typeof p.to === 'string' && /^\d+$/.test(p.to))
      return { from, to: p.to }
  } catch {}
  return undefined
}

const next = (offset: string): string => (BigInt(offset) + 1n).toString()

function toRecord(topic: string, partition: number, m: KafkaMessage): InRecord {
  return { topic, partition, offset: m.offset, key: m.key, value: m.value }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const codeOf = (err: unknown): string =>
  String((err as { code?: unknown } | undefined)?.code ?? 'STORE_FAILED')

export class KafkaIngester {
  private readonly kafka: Kafka
  private readonly consumer: Consumer
  private readonly admin: Admin
  private readonly o: Required<Omit<KafkaIngesterOptions, 'clientId'>>
  private readonly ingestor: Ingestor
  private readonly metrics: IngestMetrics
  private readonly logger: Logger
  /** Partitions whose committed plan has been read since the last rebalance. */
  private readonly planned = new Map<string, Plan | undefined>()
  /** Records read past the committed offset while waiting for the rest of a plan. */
  private readonly carry = new Map<string, { records: InRecord[]; decoded: Decoded[] }>()
  private pausedCount = 0
  private stopped = false
  /** Codes of store-wide errors already logged since a block was last stored. */
  private readonly storeWideSaid = new Set<string>()
  private giveUp!: (err: EbbflowError) => void
  /**
   * Resolves when the ingester gave up on a store that no retry cures: the caller stops it and
   * exits non-zero. Never rejects.
   */
  readonly failed: Promise<EbbflowError> = new Promise((resolve) => {
    this.giveUp = resolve
  })

  constructor(
    options: KafkaIngesterOptions,
    ingestor: Ingestor,
    metrics: IngestMetrics,
    logger: Logger,
  ) {
    this.o = {
      groupId: 'ebbflow-ingester',
      maxRows: 100_000,
      maxBytes: 16 * 1024 * 1024,
      maxWaitMs: 500,
      minBytes: 1024 * 1024,
      slowInsertMs: 2000,
      concurrency: 2,
      sessionTimeoutMs: 10_000,
      restartDelayMs: 1000,
      storeFailureExitMs: 60_000,
      ...options,
    }
    this.ingestor = ingestor
    this.metrics = metrics
    this.logger = logger
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'ebbflow-ingester',
      brokers: options.brokers,
      connectionTimeout: 3000,
      logLevel: kafkaLogLevel.NOTHING,
    })
    this.consumer = this.kafka.consumer({
      groupId: this.o.groupId,
      // A killed member holds its partitions this long: kafkajs's 30 s default was the whole
      // of a restarted ingester's wait to rejoin.
      sessionTimeout: this.o.sessionTimeoutMs,
      heartbeatInterval: Math.floor(this.o.sessionTimeoutMs / 3),
      minBytes: this.o.minBytes,
      maxWaitTimeInMs: this.o.maxWaitMs,
      maxBytesPerPartition: this.o.maxBytes,
      maxBytes: this.o.maxBytes * 2,
      retry: {
        retries: 8,
        initialRetryTime: 300,
        maxRetryTime: 5000,
        // kafkajs restarts a crashed consumer even after disconnect() when the crash raced it
        // (a stop during the first join); a stopped ingester stays stopped.
        restartOnFailure: async () => !this.stopped,
      },
    })
    this.admin = this.kafka.admin()
  }

  /** Joins the group and consumes until stop(); resolves once consuming has started. */
  async start(): Promise<void> {
    await this.admin.connect()
    await this.ensureTopics()
    await this.consumer.connect()
    // A rebalance may hand this member partitions another member was halfway through: their
    // plans are read again, and records carried for a plan are dropped (re-read from Kafka).
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.planned.clear()
      this.carry.clear()
      this.metrics.groupJoins.inc()
      this.logger.info({ memberAssignment: e.payload.memberAssignment }, 'joined the group')
    })
    this.consumer.on(this.consumer.events.HEARTBEAT, () => this.metrics.heartbeats.inc())
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      if (e.payload.restart || this.stopped) {
        this.logger.error({ err: e.payload.error }, 'consumer crashed; kafkajs restarts it')
        return
      }
      // kafkajs restarts only after errors it calls retriable. A commit refused with
      // UNKNOWN_MEMBER_ID (the group dropped this member during a long store) is not one: the
      // consumer stays disconnected while the process lives on, and its partitions are never
      // taken up again. Join the group afresh instead; nothing was committed past the block.
      this.logger.error(
        { err: e.payload.error },
        'consumer crashed on an error kafkajs does not retry; rejoining the group',
      )
      this.metrics.consumerRestarts.inc()
      setTimeout(() => {
        if (this.stopped) return
        this.run().catch((err) =>
          this.logger.error({ err }, 'rejoining the group after a crash failed'),
        )
      }, this.o.restartDelayMs).unref()
    })
    await this.run()
  }

  /** Connects (again after a crash), subscribes and consumes. */
  private async run(): Promise<void> {
    await this.consumer.connect()
    await this.consumer.subscribe({ topics: this.o.topics, fromBeginning: true })
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.o.concurrency,
      eachBatch: (payload) => this.eachBatch(payload),
    })
  }

  /**
   * Creates the topics that do not exist yet (broker defaults for partitions and replication),
   * so an ingester started before any collector has published waits for records instead of
   * failing its subscription.
   */
  private async ensureTopics(): Promise<void> {
    const created = await ensureTopics(this.admin, this.o.topics)
    if (created.length > 0) this.logger.info({ topics: created }, 'created missing topics')
  }

  /** Finishes the block in flight (stored and committed), leaves the group, disconnects. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.consumer.disconnect()
    await this.admin.disconnect()
  }

  private async planOf(topic: string, partition: number, firstOffset: string) {
    const key = `${topic}:${partition}`
    if (!this.planned.has(key)) {
      const [t] = await this.admin.fetchOffsets({ groupId: this.o.groupId, topics: [topic] })
      const p = t?.partitions.find((x) => x.partition === partition)
      const plan = p ? decodePlan(p.offset, p.metadata) : undefined
      if (plan) this.logger.info({ topic, partition, ...plan }, 'resuming a planned block')
      this.planned.set(key, plan)
    }
    const plan = this.planned.get(key)
    // A plan only binds the block that starts where it was made.
    if (plan && BigInt(plan.from) < BigInt(firstOffset) && !this.carry.has(key)) {
      this.planned.set(key, undefined)
      return undefined
    }
    return plan
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p
    const { topic, partition } = batch
    const key = `${topic}:${partition}`
    let records = batch.messages.map((m) => toRecord(topic, partition, m))
    if (records.length === 0) return
    let decoded = records.map(decodeRecord)
    const carried = this.carry.get(key)
    if (carried) {
      records = [...carried.records, ...records]
      decoded = [...carried.decoded, ...decoded]
      this.carry.delete(key)
    }
    let i = 0
    while (i < records.length && p.isRunning() && !p.isStale()) {
      const plan = await this.planOf(topic, partition, records[i]!.offset)
      let end: number
      if (plan && plan.from === records[i]!.offset) {
        const j = records.findIndex((r, k) => k >= i && r.offset === plan.to)
        if (j < 0) {
          // The plan reaches past this fetch: hold the records (not committed) until it is whole.
          this.carry.set(key, { records: records.slice(i), decoded: decoded.slice(i) })
          p.resolveOffset(records[records.length - 1]!.offset)
          return
        }
        end = j + 1
      } else {
        end = this.cut(records, decoded, i)
        // The fetch ended inside this block while the partition already holds more: the block
        // was cut by the fetch's size, not by maxRows or maxBytes. It waits (not committed) for
        // the next fetch to fill it, instead of going to the store short: a 16 MiB fetch of
        // 200 KB records held a block of 50 and a tail of 30, so a backlog was stored in 30 %
        // more statements, ledger and lag inserts and parts to merge (bench/ingest). A
        // partition that is read to its end stores its tail at once, as before.
        const last = records[records.length - 1]!.offset
        if (end === records.length && BigInt(batch.highWatermark) > BigInt(next(last))) {
          this.carry.set(key, { records: records.slice(i), decoded: decoded.slice(i) })
          p.resolveOffset(last)
          return
        }
      }
      const block = records.slice(i, end)
      const from = block[0]!.offset
      const to = block[block.length - 1]!.offset
      if (!plan)
        await this.consumer.commitOffsets([
          { topic, partition, offset: from, metadata: encodePlan(to) },
        ])
      const stored = await this.store(
        p,
        block,
        decoded.slice(i, end),
        `${this.o.groupId}:${topic}:${partition}:${from}-${to}`,
      )
      if (!stored) return
      await this.ingestor.fault('ingest.after-insert')
      await this.consumer.commitOffsets([{ topic, partition, offset: next(to), metadata: null }])
      this.planned.set(key, undefined)
      p.resolveOffset(to)
      await p.heartbeat()
      this.metrics.lag.set(
        { topic, partition: String(partition) },
        Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(next(to)))),
      )
      i = end
    }
  }

  /** Where the block starting at `i` ends: within maxRows events and maxBytes of records. */
  private cut(records: readonly InRecord[], decoded: readonly Decoded[], i: number): number {
    let rows = 0
    let bytes = 0
    let k = i
    for (; k < records.length; k++) {
      const d = decoded[k]!
      const r = d.ok ? d.events : 0
      const b = records[k]!.value?.length ?? 0
      if (k > i && (rows + r > this.o.maxRows || bytes + b > this.o.maxBytes)) break
      rows += r
      bytes += b
    }
    return k
  }

  /**
   * Stores a block, retrying what a retry can cure; the partition waits meanwhile (nothing past
   * the block is fetched or committed; other partitions go on). A slow insert is back-pressure
   * and waits the same way: it used to pause the partition from here (kafkajs's pause() inside
   * eachBatch, resumed from a timer), which left the partition unfetched for good after the
   * first slow block. So nothing calls kafkajs's pause(): this partition's eachBatch simply
   * does not return until its block is stored. A store error no retry cures (`storeWide`: a
   * missing table) is said once as an error and retried too — it may be fixed meanwhile — but
   * only for storeFailureExitMs; then the ingester gives up (`failed`). Returns false when the
   * consumer is stopping or lost the partition first, or gave up: nothing is committed then.
   */
  private async store(
    p: EachBatchPayload,
    block: InRecord[],
    decoded: Decoded[],
    token: string,
  ): Promise<boolean> {
    let waiting = false
    let delay = 250
    /** Since when this block meets a store-wide error (no retry cures it), and its code. */
    let wide: { since: number; code: string } | undefined
    try {
      for (;;) {
        const started = performance.now()
        // A store can outlast the session timeout (a block ClickHouse cannot parse is bisected:
        // tens of seconds for a few thousand records on chDB), and kafkajs heartbeats only
        // between batches: without beats meanwhile the group drops this member and another
        // stores the block again. kafkajs sends a heartbeat only when the last one is at least
        // heartbeatInterval old (it drops calls in between), so asking at half that interval
        // gets one sent every interval, not every other one.
        const beat = setInterval(
          () =>
            void p.heartbeat().catch((err) => {
              // A rebalance under way: this member rejoins when the block is stored.
              this.logger.debug({ err, token }, 'heartbeat during a store failed')
            }),
          Math.floor(this.o.sessionTimeoutMs / 6),
        )
        try {
          await this.ingestor.ingestBlock(block, token, decoded).finally(() => clearInterval(beat))
          const took = performance.now() - started
          if (took > this.o.slowInsertMs)
            this.logger.warn({ tookMs: Math.round(took), token }, 'slow insert')
          if (wide) {
            this.storeWideSaid.clear()
            this.logger.info({ token, code: wide.code }, 'the store takes blocks again')
          }
          return true
        } catch (err) {
          if (!waiting) {
            waiting = true
            this.setPaused(+1)
          }
          if (incurable(err)) {
            const now = performance.now()
            if (!wide) {
              wide = { since: now, code: codeOf(err) }
              this.metrics.storeUnusable.inc({ code: wide.code })
            }
            this.reportStoreWide(err, token)
            const exitMs = this.o.storeFailureExitMs
            if (exitMs > 0 && now - wide.since >= exitMs) {
              // Given up: the block stays uncommitted for whoever takes the partition next.
              this.giveUp(
                new EbbflowError(
                  'STORE_UNUSABLE',
                  `the store refused a block for ${Math.round((now - wide.since) / 1000)} s with an error no retry cures (${wide.code}): ${(err as Error).message}`,
                  { cause: err },
                ),
              )
              return false
            }
          } else
            this.logger.warn(
              { err, token, retryInMs: delay },
              'storing a block failed; partition paused, retrying',
            )
          await sleep(delay)
          delay = Math.min(delay * 2, 5000)
          if (!p.isRunning() || p.isStale()) return false
          await p.heartbeat()
        }
      }
    } finally {
      if (waiting) this.setPaused(-1)
      if (wide) this.metrics.storeUnusable.dec({ code: wide.code })
    }
  }

  /** Says an incurable error once per episode (until a block is stored again), not per retry. */
  private reportStoreWide(err: unknown, token: string): void {
    const code = codeOf(err)
    if (this.storeWideSaid.has(code)) {
      this.logger.debug({ err, token }, 'the store still cannot take the block')
      return
    }
    this.storeWideSaid.add(code)
    this.logger.error(
      {
        err,
        code,
        token,
        exitInMs: this.o.storeFailureExitMs > 0 ? this.o.storeFailureExitMs : undefined,
      },
      'the store cannot take any block and no retry cures it: fix the store (a missing table or database, its grants); retrying meanwhile, nothing committed or dead-lettered',
    )
  }

  private setPaused(delta: number): void {
    this.pausedCount += delta
    this.metrics.paused.set(this.pausedCount)
  }
}

/**
 * Errors no retry of the same block cures: store-wide ones (`storeWide`: a missing table,
 * refused credentials), and any other error the store marks as not retriable or that is not
 * the store's at all (a bookkeeping insert the store refuses whatever the block, a bug): the
 * records were already tried one by one where a record could be at fault (`Ingestor`), so
 * what escapes is not theirs. They get the store-wide treatment: one error line, the metric,
 * nothing committed, and an exit after storeFailureExitMs for a supervisor to restart (and an
 * operator to see). KafkaJS's errors (a dead-letter topic while the broker is away) and the
 * store's retriable ones (unreachable, too many parts) are retried with backoff for as long
 * as they last.
 */
function incurable(err: unknown): boolean {
  if (storeWide(err)) return true
  const e = err as { name?: unknown; retriable?: unknown } | undefined
  if (typeof e?.name === 'string' && e.name.startsWith('KafkaJS')) return false
  return e?.retriable !== true
}
