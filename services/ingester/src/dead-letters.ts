// Where records that cannot be stored go, with the error, the original bytes and where they
// came from: the Kafka topic ebbflow.dlq.v1 in the distributed mode, the table
// ebbflow.dead_letters in the embedded one. A dead letter is written before the offset that
// covers it is committed, so a crash can repeat one but never lose one.
import { createHash } from 'node:crypto'
import { DLQ_TOPIC } from '@ebbflow/common/topics'
import type { Store } from '@ebbflow/store'
import { Kafka, logLevel as kafkaLogLevel, type Producer } from 'kafkajs'
import type { DeadLetterReason, InRecord } from './records.ts'

export { DLQ_TOPIC }

export interface DeadLetter {
  record: InRecord
  reason: DeadLetterReason
  error: string
  /** Which ingester path saw it: kafka, in-process, knative, msk. */
  source: string
}

export interface DeadLetterSink {
  /** Resolves once every letter is durable; rejects otherwise (the caller retries). */
  write(letters: readonly DeadLetter[]): Promise<void>
  close(): Promise<void>
}

/** Header names on ebbflow.dlq.v1 records; the value and key are the original bytes. */
export const DLQ_HEADERS = {
  reason: 'ebbflow-dlq-reason',
  error: 'ebbflow-dlq-error',
  source: 'ebbflow-dlq-source',
  topic: 'ebbflow-dlq-topic',
  partition: 'ebbflow-dlq-partition',
  offset: 'ebbflow-dlq-offset',
  /** Set when the value was cut to fit the topic: the original's size and SHA-256 (hex). */
  truncated: 'ebbflow-dlq-truncated',
  originalBytes: 'ebbflow-dlq-original-bytes',
  sha256: 'ebbflow-dlq-sha256',
} as const

/**
 * Bytes a dead letter may take on the topic, value, key and headers together. Kafka's
 * default message.max.bytes is 1 MiB (1048588) for a whole record batch; a record that
 * was just under it on its own topic is over it once headers are added, and a dead letter
 * refused by the broker would be retried forever while its partition waits. Default: 900 KiB.
 */
export const DLQ_MAX_MESSAGE_BYTES = 900 * 1024

/** The error text kept in a header, at most (an error can quote a whole record). */
const ERROR_MAX_CHARS = 4096

interface DlqMessage {
  key: Buffer | null
  value: Buffer
  headers: Record<string, string>
}

function messageBytes(m: DlqMessage): number {
  let n = m.value.length + (m.key?.length ?? 0) + 64
  for (const [k, v] of Object.entries(m.headers)) n += k.length + Buffer.byteLength(v) + 8
  return n
}

/** The letter as a DLQ record no larger than `max`: the value is cut when it must be. */
export function dlqMessage(l: DeadLetter, max = DLQ_MAX_MESSAGE_BYTES): DlqMessage {
  const value = l.record.value ?? Buffer.alloc(0)
  const error = l.error.length > ERROR_MAX_CHARS ? `${l.error.slice(0, ERROR_MAX_CHARS)}…` : l.error
  const m: DlqMessage = {
    key: l.record.key,
    value,
    headers: {
      [DLQ_HEADERS.reason]: l.reason,
      [DLQ_HEADERS.error]: error,
      [DLQ_HEADERS.source]: l.source,
      [DLQ_HEADERS.topic]: l.record.topic,
      [DLQ_HEADERS.partition]: String(l.record.partition),
      [DLQ_HEADERS.offset]: l.record.offset,
    },
  }
  if (messageBytes(m) <= max) return m
  m.headers[DLQ_HEADERS.truncated] = 'true'
  m.headers[DLQ_HEADERS.originalBytes] = String(value.length)
  m.headers[DLQ_HEADERS.sha256] = createHash('sha256').update(value).digest('hex')
  if (m.key && m.key.length > 1024) m.key = m.key.subarray(0, 1024)
  m.value = value.subarray(0, Math.max(0, max - (messageBytes(m) - value.length)))
  return m
}

export class KafkaDeadLetters implements DeadLetterSink {
  private readonly producer: Producer
  private connected: Promise<void> | undefined
  private readonly topic: string
  private readonly maxMessageBytes: number

  constructor(
    brokers: string[],
    topic = DLQ_TOPIC,
    clientId = 'ebbflow-ingester',
    maxMessageBytes = DLQ_MAX_MESSAGE_BYTES,
  ) {
    this.topic = topic
    this.maxMessageBytes = maxMessageBytes
    const kafka = new Kafka({
      clientId,
      brokers,
      connectionTimeout: 3000,
      logLevel: kafkaLogLevel.NOTHING,
    })
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  }

  async write(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return
    this.connected ??= this.producer.connect().catch((err) => {
      this.connected = undefined
      throw err
    })
    await this.connected
    // One send is one record batch per partition, and the broker's limit is per batch: the
    // letters go in groups that fit it.
    let group: DlqMessage[] = []
    let bytes = 0
    const flush = async () => {
      if (group.length === 0) return
      await this.producer.send({ topic: this.topic, acks: -1, messages: group })
      group = []
      bytes = 0
    }
    for (const l of letters) {
      const m = dlqMessage(l, this.maxMessageBytes)
      const size = messageBytes(m)
      if (bytes + size > this.maxMessageBytes) await flush()
      group.push(m)
      bytes += size
    }
    await flush()
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect()
  }
}

/** The embedded mode's dead letters: rows of ebbflow.dead_letters (value in base64). */
export class StoreDeadLetters implements DeadLetterSink {
  private readonly store: Store

  constructor(store: Store) {
    this.store = store
  }

  async write(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return
    const now = Date.now()
    // A block redelivered after a crash (its offsets not yet committed) refuses the same records
    // again: the token, made of where each letter came from, why, and its bytes, keeps one copy
    // of them. The time column differs between the two writes, so the rows' own hash would not.
    // The bytes are in it because offsets alone are not an identity everywhere: `ebbflow up`'s
    // in-process queue numbers its records from 0 again after a restart.
    const token = createHash('sha256')
    for (const l of letters) {
      const key = l.record.key ?? Buffer.alloc(0)
      const value = l.record.value ?? Buffer.alloc(0)
      token.update(
        `${l.record.topic}\0${l.record.partition}\0${l.record.offset}\0${l.reason}\0${key.length}\0${value.length}\0`,
      )
      token.update(key)
      token.update(value)
    }
    await this.store.insert(
      'ebbflow.dead_letters',
      letters.map((l) => ({
        time: (now / 1000).toFixed(3),
        source: l.source,
        topic: l.record.topic,
        partition: l.record.partition,
        offset: l.record.offset,
        reason: l.reason,
        error: l.error,
        key: l.record.key?.toString('base64') ?? '',
        value_base64: l.record.value?.toString('base64') ?? '',
      })),
      { dedupToken: `dlq:${token.digest('hex')}` },
    )
  }

  async close(): Promise<void> {}
}
