// Where encoded EventBatches go: Kafka in the distributed mode, an in-process queue in the
// embedded one. The publisher above it owns batching, the memory budget and drop counting.
import { registerCodecs } from '@ebbflow/common/kafka'
import kafkajs, { CompressionTypes, Kafka, logLevel as kafkaLogLevel, type Producer } from 'kafkajs'

registerCodecs(kafkajs)

export interface OutRecord {
  topic: string
  /** The node name: one node's records land on one partition, in order. */
  key: string
  value: Buffer
}

export interface Transport {
  /** Sends the records, in order; resolves once every one is acknowledged; rejects otherwise
   * (the caller keeps them and retries). */
  send(records: OutRecord[]): Promise<void>
  close(): Promise<void>
  /** True when the records' bytes are no longer read once send() settled (the transport
   * copied them into its requests): the publisher may then reuse their buffers. */
  readonly copiesRecords?: boolean
  /** Bytes of records (before compression) one send() should carry, about; at least one
   * record always goes. Default: 1 MiB. Read before each send: a transport may lower it. */
  readonly requestMaxBytes?: number
}

/** Kafka's default limit on one partition's record batch (message.max.bytes), about. */
const KAFKA_MESSAGE_MAX = 1 << 20

/** Whether kafkajs failed a send because the broker refused a record batch as too large
 * (the error comes wrapped by its retrier; its cause or its list of errors holds the code). */
function tooLarge(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false
  const e = err as { type?: unknown; cause?: unknown; errors?: unknown }
  if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE') return true
  if (Array.isArray(e.errors) && e.errors.some((x) => tooLarge(x, depth + 1))) return true
  return tooLarge(e.cause, depth + 1)
}

export interface KafkaTransportOptions {
  brokers: string[]
  clientId?: string
  /** One connection attempt's timeout. Default: 3000 ms. */
  connectionTimeoutMs?: number
  /** Per request. Default: 10000 ms. */
  requestTimeoutMs?: number
  /** Record batch compression: gzip and zstd are registered above (node:zlib); lz4 needs its
   * codec registered in kafkajs' CompressionCodecs first (bench/collector-cost/codecs.ts
   * does). Default: zstd. */
  compression?: 'gzip' | 'none' | 'lz4' | 'zstd'
}

/** kafkajs: idempotent producer, acks=-1, zstd. Reconnects on the next send after a failure. */
export class KafkaTransport implements Transport {
  /** kafkajs encodes each message's value into its request before sending. */
  readonly copiesRecords = true
  private readonly kafka: Kafka
  private producer: Producer | undefined
  private readonly compression: CompressionTypes
  /**
   * Compressed, several batches go in one request: kafkajs compresses a request's records of
   * one partition into one record batch, and the broker limits that batch's compressed size
   * (1 MiB by default), so uncompressed a request stays at one batch of 512 KiB. One 512 KiB
   * batch per request made the broker path ~140,000 events/s to acknowledgement;
   * 4 MiB, ~240,000 (bench/RESULTS.md, "collector cost"). Records that compress badly could
   * still pass the broker's limit: after the first such refusal every request carries a
   * single batch.
   */
  requestMaxBytes: number

  constructor(options: KafkaTransportOptions) {
    this.compression = {
      none: CompressionTypes.None,
      gzip: CompressionTypes.GZIP,
      lz4: CompressionTypes.LZ4,
      zstd: CompressionTypes.ZSTD,
    }[options.compression ?? 'zstd']
    this.requestMaxBytes =
      this.compression === CompressionTypes.None ? KAFKA_MESSAGE_MAX : 4 * KAFKA_MESSAGE_MAX
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'ebbflow-collector',
      brokers: options.brokers,
      connectionTimeout: options.connectionTimeoutMs ?? 3000,
      requestTimeout: options.requestTimeoutMs ?? 10_000,
      // The publisher retries forever with its own backoff; kafkajs gives up quickly so a
      // dead broker shows up as a failed send instead of a minute-long await.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      // Outages are logged once by the publisher, not per attempt on the console.
      logLevel: kafkaLogLevel.NOTHING,
    })
  }

  async send(records: OutRecord[]): Promise<void> {
    if (!this.producer) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: true,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      })
      try {
        await producer.connect()
      } catch (err) {
        await producer.disconnect().catch(() => {})
        throw err
      }
      this.producer = producer
    }
    const byTopic = new Map<string, { key: string; value: Buffer }[]>()
    for (const r of records) {
      const list = byTopic.get(r.topic) ?? []
      if (list.length === 0) byTopic.set(r.topic, list)
      list.push({ key: r.key, value: r.value })
    }
    try {
      await this.producer.sendBatch({
        acks: -1,
        compression: this.compression,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      })
    } catch (err) {
      if (tooLarge(err)) this.requestMaxBytes = 0
      const producer = this.producer
      this.producer = undefined
      await producer.disconnect().catch(() => {})
      throw err
    }
  }

  async close(): Promise<void> {
    const producer = this.producer
    this.producer = undefined
    await producer?.disconnect()
  }
}

/**
 * The embedded mode's transport: an in-process async queue. `consume()` yields records in
 * send order. Holding at most `capacityBytes` unread, `send` waits for the consumer beyond
 * that, so a slow consumer backs up into the publisher's budget (and its drop counts) just as
 * a slow broker does.
 */
export class InProcessTransport implements Transport {
  private readonly capacityBytes: number
  private readonly buffered: OutRecord[] = []
  private bufferedBytes = 0
  private readers: ((r: IteratorResult<OutRecord>) => void)[] = []
  private spaceWaiters: (() => void)[] = []
  private closed = false

  constructor(capacityBytes = 16 * 1024 * 1024) {
    this.capacityBytes = capacityBytes
  }

  async send(records: OutRecord[]): Promise<void> {
    for (const r of records) {
      if (this.closed) throw new Error('in-process transport closed')
      const reader = this.readers.shift()
      if (reader) {
        reader({ value: r, done: false })
        continue
      }
      while (this.bufferedBytes > 0 && this.bufferedBytes + r.value.length > this.capacityBytes) {
        await new Promise<void>((resolve) => this.spaceWaiters.push(resolve))
        if (this.closed) throw new Error('in-process transport closed')
      }
      this.buffered.push(r)
      this.bufferedBytes += r.value.length
    }
  }

  /** Records as they arrive; ends after close() once the buffer is empty. */
  async *consume(): AsyncGenerator<OutRecord> {
    for (;;) {
      const r = this.buffered.shift()
      if (r) {
        this.bufferedBytes -= r.value.length
        for (const wake of this.spaceWaiters.splice(0)) wake()
        yield r
        continue
      }
      if (this.closed) return
      const next = await new Promise<IteratorResult<OutRecord>>((resolve) =>
        this.readers.push(resolve),
      )
      if (next.done) return
      yield next.value
    }
  }

  async close(): Promise<void> {
    this.closed = true
    for (const reader of this.readers.splice(0)) reader({ value: undefined, done: true })
    for (const wake of this.spaceWaiters.splice(0)) wake()
  }
}
