// Builds the ingester from its configuration: the store (migrated when asked), the dead-letter
// sink, metrics, and the source — a Kafka consumer group, a Knative KafkaSource sink, or the
// in-process queue `ebbflow up` hands it.
import { createLogger, type Logger } from '@ebbflow/common'
import { serveMetrics } from '@ebbflow/common/metrics-server'
import { migrate, openStore, type Store } from '@ebbflow/store'
import type { IngesterConfig } from './config.ts'
import { type DeadLetterSink, KafkaDeadLetters, StoreDeadLetters } from './dead-letters.ts'
import { Faults } from './faults.ts'
import { InProcessIngester, type QueuedRecord } from './in-process.ts'
import { Ingestor } from './ingest.ts'
import { KafkaIngester } from './kafka-ingester.ts'
import { knativeSink } from './knative.ts'
import { IngestMetrics } from './metrics.ts'

export interface IngesterDeps {
  logger?: Logger
  /** The store to write; start opens the one config.store names when absent (and closes it). */
  store?: Store
  /**
   * Records to consume instead of Kafka: the in-process queue of the embedded mode. The
   * ingester stores them until the source ends, so the owner closes it before stop().
   */
  inProcess?: AsyncIterable<QueuedRecord>
}

export interface RunningIngester {
  metrics: IngestMetrics
  metricsPort: number | undefined
  knativePort: number | undefined
  store: Store
  /** Schema migrations this start applied. */
  migrationsApplied: number
  /**
   * Resolves when the Kafka consumer gave up on a store error no retry cures (after
   * storeFailureExitMs): the caller stops the ingester and exits non-zero. Absent for the
   * other sources.
   */
  failed?: Promise<Error>
  /** Finishes the block in flight, commits it, and closes everything. */
  stop(): Promise<void>
}

/** How long an in-process queue may take to drain into a store that keeps failing at stop. */
const IN_PROCESS_DRAIN_MS = 10_000

export async function start(
  config: IngesterConfig,
  deps: IngesterDeps = {},
): Promise<RunningIngester> {
  const logger = deps.logger ?? createLogger('ingest', config.store.logLevel)
  const { store, where, kind } = deps.store
    ? { store: deps.store, where: 'shared', kind: 'shared' }
    : await openStore(config.store)
  const closers: (() => Promise<void>)[] = deps.store ? [] : [() => store.close()]
  const stop = async () => {
    for (const close of closers.reverse().splice(0))
      await close().catch((err) => logger.warn({ err }, 'closing'))
  }
  try {
    let migrationsApplied = 0
    if (config.migrate) {
      const r = await migrate(store, { retentionDays: config.store.retentionDays })
      migrationsApplied = r.applied.length
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
    let failed: Promise<Error> | undefined
    if (config.fault) logger.warn({ fault: config.fault }, 'a fault point is armed')
    const faults = new Faults(config.fault)
    if (deps.inProcess) {
      const ingester = new InProcessIngester(
        new Ingestor({
          store,
          deadLetters,
          metrics,
          logger,
          source: 'in-process',
          faults,
          deferBookkeeping: config.bookkeepingMs > 0,
        }),
        logger,
        {
          maxRows: config.maxRows,
          maxBytes: config.maxBytes,
          maxWaitMs: config.maxWaitMs,
          bookkeepingMs: config.bookkeepingMs,
        },
        metrics,
      )
      const done = ingester.consume(deps.inProcess)
      closers.push(async () => {
        // The queue drains into the store; a store that keeps failing gets a while more, then
        // the ingester stops retrying (and logs what it could not store) so the stop completes.
        const giveUp = setTimeout(() => ingester.stop(), IN_PROCESS_DRAIN_MS)
        await done
        clearTimeout(giveUp)
      })
      logger.info({ store: where, storeKind: kind }, 'ingesting the in-process queue')
    } else if (config.knativePort !== undefined) {
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
          storeFailureExitMs: config.storeFailureExitMs,
        },
        ingestor,
        metrics,
        logger,
      )
      // Registered before the start: a start that fails after connecting (a subscription
      // refused) leaves the consumer and admin connected, whose sockets and retries kept the
      // process alive after it had said why it stopped.
      closers.push(() => consumer.stop())
      await consumer.start()
      failed = consumer.failed
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
    return {
      metrics,
      metricsPort,
      knativePort,
      store,
      migrationsApplied,
      ...(failed ? { failed } : {}),
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
