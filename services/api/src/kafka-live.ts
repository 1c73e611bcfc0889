// The live tail in the distributed mode: the API reads the event topics itself, from their
// current end, and hands each decoded event to its subscribers. It commits nothing and shares
// its group with no one (kafkajs always joins a group, so each API instance has a private,
// random one): the tail never takes records away from the ingester or from another API pod.
// Nothing is decoded while nobody is subscribed.
import { randomUUID } from 'node:crypto'
import type { Logger } from '@ebbflow/common'
import { ensureTopics, registerCodecs } from '@ebbflow/common/kafka'
import { batchEvents, decodeEventBatch, TOPICS } from '@ebbflow/common/wire'
import kafkaCodecs, { type Consumer, Kafka, logLevel as kafkaLogLevel } from 'kafkajs'
import { type LiveEvent, type LiveSource, MemoryLiveSource } from './live.ts'

registerCodecs(kafkaCodecs)

export class KafkaLiveSource implements LiveSource {
  private readonly memory = new MemoryLiveSource()
  private readonly consumer: Consumer
  private readonly kafka: Kafka
  private readonly logger: Logger | undefined
  /** Records that were not EventBatches (they are the ingester's to dead-letter, not ours). */
  undecodable = 0
  /** Batches skipped for holding enum values this reader has no name for. */
  unnamed = 0

  constructor(brokers: string[], logger?: Logger) {
    this.logger = logger
    this.kafka = new Kafka({
      clientId: 'ebbflow-api-live',
      brokers,
      connectionTimeout: 3000,
      logLevel: kafkaLogLevel.NOTHING,
    })
    this.consumer = this.kafka.consumer({
      groupId: `ebbflow-api-live-${randomUUID()}`,
      maxWaitTimeInMs: 100,
    })
  }

  /** Joins (its own group), starting at the topics' current end. */
  async start(): Promise<void> {
    // Subscribing to a topic no collector has created yet fails; create them as the ingester does.
    const admin = this.kafka.admin()
    await admin.connect()
    try {
      await ensureTopics(admin, Object.values(TOPICS))
    } finally {
      await admin.disconnect()
    }
    await this.consumer.connect()
    await this.consumer.subscribe({ topics: Object.values(TOPICS), fromBeginning: false })
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (this.memory.subscriberCount === 0 || !message.value) return
        let events: LiveEvent[]
        try {
          const batch = decodeEventBatch(message.value)
          // A kind, role or direction this reader has no name for (a newer collector's) would
          // show under a placeholder name: the batch is the ingester's to dead-letter, not ours.
          if (batch.unknownEnums.length > 0) {
            this.unnamed++
            this.logger?.warn(
              { unknownEnums: batch.unknownEnums.slice(0, 5) },
              'live tail skipped a batch with enum values it cannot name',
            )
            return
          }
          events = batchEvents(batch)
        } catch {
          this.undecodable++
          return
        }
        for (const e of events) this.memory.publish(e)
      },
    })
    this.logger?.info({ topics: Object.values(TOPICS) }, 'live tail reading Kafka')
  }

  subscribe(): AsyncIterable<LiveEvent> {
    return this.memory.subscribe()
  }

  get subscriberCount(): number {
    return this.memory.subscriberCount
  }

  async close(): Promise<void> {
    this.memory.close()
    await this.consumer.disconnect()
  }
}
