// Builds the ingester from its configuration: the store (migrated when asked), the dead-letter
// sink, metrics, and the source — a Kafka consumer group or a Knative KafkaSource sink.
import type { Logger } from '@ebbflow/common'
import { serveMetrics } from '@ebbflow/common/metrics-server'
import { migrate, openStore, type Store } from '@ebbflow/common/store/index'
import type { IngesterConfig } from './config.ts'
import { type DeadLetterSink, KafkaDeadLetters, StoreDeadLetters } from './dead-letters.ts'
import { Faults } from './faults.ts'
import { Ingestor } from './ingest.ts'
import { KafkaIngester } from './kafka-ingester.ts'
import { knativeSink } from './knative.ts'
import { IngestMetrics } from './metrics.ts'

export interface RunningIngester {
  metrics: IngestMetrics
  metricsPort: number | undefined
  knativePort: number | undefined
  store: Store
  /** Finishes the block in flight, commits it, and closes everything. */
  stop(): Promise<void>
}

export async function startIngester(
  config: IngesterConfig,
  logger: Logger,
): Promise<RunningIngester> {
  const { store, where, kind } = await openStore(config.store)
  const closers: (() => Promise<void>)[] = [() => store.close()]
  const stop = async () => {
    for (const close of closers.reverse().splice(0))
      await close().catch((err) => logger.warn({ err }, 'closing'))
  }
  try {
    if (config.migrate) {
      const r = await migrate(store, { retentionDays: config.store.retentionDays })
      logger.info({ applied: r.applied.length, upToDate: r.skipped.length }, 'schema checked')
    }
    const metrics = new IngestMetrics()
    let metricsPort: number | undefined
    if (config.metricsPort >= 0) {
      const served = await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost)
      metricsPort = served.port
      closers.push(() => new Promise((resolve) => served.server.close(() => resolve())))
    }
    // Dead letters go to Kafka when there is one; a Knative sink without brokers keeps them in
    // the store's dead_letters table.
    let deadLetters: DeadLetterSink
    if (config.kafkaBrokers.length > 0) {
      deadLetters = new KafkaDeadLetters(config.kafkaBrokers, config.dlqTopic)
    } else {
      deadLetters = new StoreDeadLetters(store)
    }
    closers.push(() => deadLetters.close())
    let knativePort: number | undefined
    if (config.fault) logger.warn({ fault: config.fault }, 'a fault point is armed')
    const faults = new Faults(config.fault)
    if (config.knativePort !== undefined) {
      const ingestor = new Ingestor({
        store,
        deadLetters,
        metrics,
        logger,
        source: 'knative',
        faults,
      })
      const server = knativeSink(ingestor, deadLetters, logger)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(config.knativePort, '0.0.0.0', resolve)
      })
      const address = server.address()
      knativePort = typeof address === 'object' && address ? address.port : config.knativePort
      closers.push(() => new Promise((resolve) => server.close(() => resolve())))
      logger.info(
        { port: knativePort, store: where, storeKind: kind },
        'Knative KafkaSource sink listening',
      )
    } else {
      const ingestor = new Ingestor({
        store,
        deadLetters,
        metrics,
        logger,
        source: 'kafka',
        faults,
      })
      const consumer = new KafkaIngester(
        {
          brokers: config.kafkaBrokers,
          groupId: config.groupId,
          topics: config.topics,
          maxRows: config.maxRows,
          maxBytes: config.maxBytes,
          maxWaitMs: config.maxWaitMs,
          slowInsertMs: config.slowInsertMs,
          concurrency: config.concurrency,
          sessionTimeoutMs: config.sessionTimeoutMs,
        },
        ingestor,
        metrics,
        logger,
      )
      await consumer.start()
      closers.push(() => consumer.stop())
      logger.info(
        {
          brokers: config.kafkaBrokers,
          group: config.groupId,
          topics: config.topics,
          store: where,
          storeKind: kind,
          metricsPort,
        },
        'ingesting',
      )
    }
    return { metrics, metricsPort, knativePort, store, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
