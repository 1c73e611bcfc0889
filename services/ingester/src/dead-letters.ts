// Where records that cannot be stored go, with the error, the original bytes and where they
// came from: the Kafka topic ebbflow.dlq.v1 in the distributed mode, the table
// ebbflow.dead_letters in the embedded one. A dead letter is written before the offset that
// covers it is committed, so a crash can repeat one but never lose one.
import type { Store } from '@ebbflow/common/store/index'
import { Kafka, logLevel as kafkaLogLevel, type Producer } from 'kafkajs'
import type { DeadLetterReason, InRecord } from './records.ts'

export const DLQ_TOPIC = 'ebbflow.dlq.v1'

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
} as const

export class KafkaDeadLetters implements DeadLetterSink {
  private readonly producer: Producer
  private connected: Promise<void> | undefined
  private readonly topic: string

  constructor(brokers: string[], topic = DLQ_TOPIC, clientId = 'ebbflow-ingester') {
    this.topic = topic
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
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: letters.map((l) => ({
        key: l.record.key,
        value: l.record.value ?? Buffer.alloc(0),
        headers: {
          [DLQ_HEADERS.reason]: l.reason,
          [DLQ_HEADERS.error]: l.error,
          [DLQ_HEADERS.source]: l.source,
          [DLQ_HEADERS.topic]: l.record.topic,
          [DLQ_HEADERS.partition]: String(l.record.partition),
          [DLQ_HEADERS.offset]: l.record.offset,
        },
      })),
    })
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
    )
  }

  async close(): Promise<void> {}
}
