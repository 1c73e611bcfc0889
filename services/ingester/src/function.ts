// What every function form of the ingester shares: open the store, check its schema the cheap
// way, and build an Ingestor whose dead letters go to Kafka when brokers are named (in the
// function bundle kafkajs is a chunk loaded with the first letter, so a cold start does not pay
// for it).
import type { Logger } from '@ebbflow/common'
import {
  checkSchemaVersion,
  latestMigrationVersion,
  migrate,
  openStore,
  type Store,
} from '@ebbflow/store'
import type { FunctionConfig } from './config.ts'
import type { DeadLetter, DeadLetterSink } from './dead-letters.ts'
import { Ingestor } from './ingest.ts'
import { IngestMetrics } from './metrics.ts'

export interface FunctionIngester {
  ingestor: Ingestor
  store: Store
  /** The schema version found (stamp) or reached (migrate). */
  schemaVersion: number
  close(): Promise<void>
}

/** Dead letters to Kafka, the producer module loaded on the first letter. */
class LazyKafkaDeadLetters implements DeadLetterSink {
  private sink: Promise<DeadLetterSink> | undefined
  private readonly brokers: string[]
  private readonly topic: string

  constructor(brokers: string[], topic: string) {
    this.brokers = brokers
    this.topic = topic
  }

  async write(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return
    this.sink ??= import('./dead-letters.ts').then(
      (m) => new m.KafkaDeadLetters(this.brokers, this.topic, 'ebbflow-ingester-function'),
    )
    await (await this.sink).write(letters)
  }

  async close(): Promise<void> {
    if (this.sink) await (await this.sink).close()
  }
}

export async function openFunctionIngester(
  config: FunctionConfig,
  logger: Logger,
  source: string,
): Promise<FunctionIngester> {
  const { store } = await openStore(config.store)
  try {
    // The migrations folder is the checkout's, or the copy beside the function bundle
    // (scripts/package-functions.ts points DEFAULT_MIGRATIONS_DIR there).
    let schemaVersion: number
    if (config.schema === 'migrate') {
      const r = await migrate(store, { retentionDays: config.store.retentionDays })
      schemaVersion = Math.max(0, ...r.skipped, ...r.applied.map((m) => m.version))
    } else {
      schemaVersion = await checkSchemaVersion(store, latestMigrationVersion())
    }
    let deadLetters: DeadLetterSink
    if (config.kafkaBrokers.length > 0) {
      deadLetters = new LazyKafkaDeadLetters(config.kafkaBrokers, config.dlqTopic)
    } else {
      const { StoreDeadLetters } = await import('./dead-letters.ts')
      deadLetters = new StoreDeadLetters(store)
    }
    const ingestor = new Ingestor({
      store,
      deadLetters,
      metrics: new IngestMetrics(),
      logger,
      source,
    })
    return {
      ingestor,
      store,
      schemaVersion,
      async close() {
        await deadLetters.close().catch((err) => logger.warn({ err }, 'closing dead letters'))
        await store.close()
      },
    }
  } catch (err) {
    await store.close().catch(() => undefined)
    throw err
  }
}
