// `ebbflow up`: everything in one process. Collectors → in-process queue → ingester → chDB in
// a data folder → GraphQL API; or, with --kafka and --clickhouse, the same pieces against a
// real broker and server. This module only composes the services; each keeps its own config.
import { alerterOptionsOf, loadAlerterConfig, loadRules, startAlerter } from '@ebbflow/alerter'
import {
  createApi,
  guardOf,
  limitsOf,
  loadApiConfig,
  MemoryLiveSource,
  readTokens,
  startApiServer,
} from '@ebbflow/api'
import {
  type CaptureSink,
  checkCapturePrerequisites,
  InProcessPublisher,
  KafkaPublisher,
  loadCollectorConfig,
  loadEnrichConfig,
  type Publisher,
  startCollector,
} from '@ebbflow/collector'
import {
  ConfigError,
  ConfigProblems,
  type CounterEvent,
  createLogger,
  type Family,
  type Logger,
  type RecordEvent,
} from '@ebbflow/common'
import { loadStoreConfig, migrate, openStore } from '@ebbflow/common/store/index'
import { TOPICS } from '@ebbflow/common/wire'
import {
  IngestMetrics,
  Ingestor,
  InProcessIngester,
  KafkaDeadLetters,
  KafkaIngester,
  StoreDeadLetters,
} from '@ebbflow/ingester'

export interface UpFlags {
  kafka?: string
  clickhouse?: string
  dataDir?: string
  port?: string
  host?: string
  families?: string
  retentionDays?: string
  tokensFile?: string
  rules?: string
  alertmanager?: string
  webhook?: string
  corsOrigins?: string
  allowedHosts?: string
  maxBodyBytes?: string
  logLevel?: string
  status?: string
}

/** Hands every event to the publisher and to the live tail of the API. */
class Tee implements CaptureSink {
  private readonly publisher: Publisher
  private readonly live: MemoryLiveSource
  private readonly offsetNs: bigint

  constructor(publisher: Publisher, live: MemoryLiveSource, offsetNs: bigint) {
    this.publisher = publisher
    this.live = live
    this.offsetNs = offsetNs
  }

  records(events: RecordEvent[], family: Family): void {
    this.publisher.records(events, family)
    if (this.live.subscriberCount > 0)
      for (const event of events)
        this.live.publish({ event, timeNs: this.offsetNs + BigInt(Math.round(event.bootNs)) })
  }

  counters(events: CounterEvent[]): void {
    this.publisher.counters(events)
    if (this.live.subscriberCount > 0)
      for (const event of events)
        this.live.publish({ event, timeNs: this.offsetNs + BigInt(Math.round(event.bootNs)) })
  }
}

export interface Up {
  apiUrl: string
  stop(): Promise<void>
}

export async function startUp(flags: UpFlags, env: NodeJS.ProcessEnv = process.env): Promise<Up> {
  const gathered = new ConfigProblems()
  const attempt = <T>(load: () => T) => gathered.attempt(load)
  const collectorInput: Record<string, string> = {
    output: flags.kafka ? 'kafka' : 'json',
    ...(flags.kafka ? { kafkaBrokers: flags.kafka } : {}),
    ...(flags.families ? { families: flags.families } : {}),
    ...(flags.logLevel ? { logLevel: flags.logLevel } : {}),
  }
  // Every configuration is read before anything starts, so every problem shows at once.
  const collectorConfig = attempt(() => loadCollectorConfig(collectorInput, env))
  const enrichConfig = attempt(() => loadEnrichConfig({}, env))
  const storeConfig = attempt(() =>
    loadStoreConfig(
      Object.fromEntries(
        Object.entries({
          dataDir: flags.dataDir,
          clickhouse: flags.clickhouse,
          retentionDays: flags.retentionDays,
          logLevel: flags.logLevel,
        }).filter((e): e is [string, string] => e[1] !== undefined),
      ),
      env,
    ),
  )
  // On 127.0.0.1 `up` serves open by default (one user, one machine); a tokens file closes it.
  const apiConfig = attempt(() =>
    loadApiConfig(
      {
        open: flags.tokensFile || env.EBBFLOW_API_TOKENS_FILE ? 'false' : 'true',
        // GraphiQL for a browser at /graphql, next to the console at /; the environment decides
        // when it says.
        ...(env.EBBFLOW_GRAPHIQL === undefined ? { graphiql: 'true' } : {}),
        ...(env.EBBFLOW_INTROSPECTION === undefined ? { introspection: 'true' } : {}),
        ...Object.fromEntries(
          Object.entries({
            port: flags.port,
            host: flags.host,
            tokensFile: flags.tokensFile,
            corsOrigins: flags.corsOrigins,
            allowedHosts: flags.allowedHosts,
            maxBodyBytes: flags.maxBodyBytes,
            logLevel: flags.logLevel,
          }).filter((e): e is [string, string] => e[1] !== undefined),
        ),
      },
      env,
    ),
  )
  // Alert rules are optional in `up`: with --rules (or EBBFLOW_RULES) they run in-process on the
  // same store, read and checked here with everything else.
  const alerting =
    (flags.rules ?? env.EBBFLOW_RULES)
      ? attempt(() => {
          const config = loadAlerterConfig(
            Object.fromEntries(
              Object.entries({
                rules: flags.rules,
                alertmanagers: flags.alertmanager,
                webhooks: flags.webhook,
                logLevel: flags.logLevel,
              }).filter((e): e is [string, string] => e[1] !== undefined),
            ),
            env,
          )
          return { config, rules: loadRules(config.rules) }
        })
      : null
  // The tokens file is read with the rest of the configuration: a bad one stops `up` before
  // anything starts, and the API gets exactly the tokens it names.
  const tokens = attempt(() =>
    apiConfig?.tokensFile === undefined ? {} : readTokens(apiConfig.tokensFile),
  )
  if (
    !collectorConfig ||
    !enrichConfig ||
    !storeConfig ||
    !apiConfig ||
    !tokens ||
    alerting === undefined
  )
    throw new ConfigError(gathered.problems)
  // Before anything is opened or listens: without the capabilities nothing else is worth it.
  checkCapturePrerequisites({ net: collectorConfig.families.includes('net') })
  const logger = createLogger('up', collectorConfig.logLevel)

  const closers: (() => Promise<void>)[] = []
  const stopAll = async () => {
    for (const close of closers.splice(0).reverse())
      await close().catch((err: unknown) => logger.warn({ err }, 'while stopping'))
  }
  try {
    const { store, where, kind } = await openStore(storeConfig)
    closers.push(() => store.close())
    const migrated = await migrate(store, { retentionDays: storeConfig.retentionDays })
    const metrics = new IngestMetrics()
    const live = new MemoryLiveSource()
    closers.push(async () => live.close())

    // Transport and ingester first, so nothing the collector publishes waits for a reader.
    let publisher: Publisher
    let stored: () => Promise<number>
    if (collectorConfig.output === 'kafka') {
      const deadLetters = new KafkaDeadLetters(collectorConfig.kafkaBrokers)
      closers.push(() => deadLetters.close())
      const consumer = new KafkaIngester(
        { brokers: collectorConfig.kafkaBrokers, topics: Object.values(TOPICS) },
        new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' }),
        metrics,
        logger,
      )
      await consumer.start()
      closers.push(() => consumer.stop())
      publisher = new KafkaPublisher(collectorConfig, logger)
      stored = () => rowsFrom(metrics)
    } else {
      const inProcess = new InProcessPublisher(collectorConfig, logger)
      const ingester = new InProcessIngester(
        new Ingestor({
          store,
          deadLetters: new StoreDeadLetters(store),
          metrics,
          logger,
          source: 'in-process',
        }),
        logger,
      )
      const ingesterDone = ingester.consume(inProcess.transport.consume())
      closers.push(async () => {
        await inProcess.transport.close()
        // The queue drains into the store; a store that keeps failing gets 10 s more, then the
        // ingester stops retrying (and logs what it could not store) so the stop completes.
        const giveUp = setTimeout(() => ingester.stop(), 10_000)
        await ingesterDone
        clearTimeout(giveUp)
      })
      publisher = inProcess
      stored = async () => ingester.stats.rows
    }
    closers.push(async () => {
      logger.info({ stats: await publisher.close() }, 'publisher flushed')
    })

    const api = createApi({
      store,
      tokens,
      open: apiConfig.open,
      limits: limitsOf(apiConfig),
      graphiql: apiConfig.graphiql,
      introspection: apiConfig.introspection,
      logger,
      serializeQueries: kind === 'chdb',
      corsOrigins: apiConfig.corsOrigins,
      live,
    })
    const server = await startApiServer({
      api,
      port: apiConfig.port,
      host: apiConfig.host,
      guard: guardOf(apiConfig),
    })
    closers.push(() => server.close())

    if (alerting) {
      const { config, rules } = alerting
      const running = startAlerter(rules, alerterOptionsOf(config), { store, logger })
      closers.push(() => running.stop())
      logger.info({ rules: rules.map((r) => r.name) }, 'alert rules evaluated in-process')
    }

    const collector = startCollector(
      collectorConfig,
      enrichConfig,
      new Tee(publisher, live, publisher.clock.offsetNs),
      logger,
    )
    closers.push(() => collector.stop())

    const report = collector.capture.report
    logger.info(
      {
        families: report.families.map((f) => `${f.family} (${f.programs.join(', ')})`),
        kernel: report.features.kernelRelease,
        enrichment: collector.enrichment.mode,
        console: server.consoleUrl,
        api: server.url,
        store: `${kind} ${where}`,
        migrationsApplied: migrated.applied.length,
      },
      `ebbflow is up: console at ${server.consoleUrl ?? '(not served)'}, GraphQL at ${server.url}, data in ${where}`,
    )
    const status = startStatus(flags, collector.capture, stored, logger)
    closers.push(async () => status())
    return { apiUrl: server.url, stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}

async function rowsFrom(metrics: IngestMetrics): Promise<number> {
  const { values } = await metrics.rows.get()
  return values.reduce((n, v) => n + v.value, 0)
}

/**
 * One status line every 2 s on a terminal (or with --status on): events/s, drops, rows stored.
 * Returns the function that stops it.
 */
function startStatus(
  flags: UpFlags,
  capture: { stats(): { records: number; dropped: number } },
  stored: () => Promise<number>,
  logger: Logger,
): () => void {
  const onTerminal = process.stderr.isTTY === true
  if (!(onTerminal || flags.status === 'true')) return () => {}
  let last = capture.stats().records
  let lastAt = performance.now()
  const timer = setInterval(async () => {
    const s = capture.stats()
    const rows = await stored()
    const now = performance.now()
    const rate = Math.round(((s.records - last) * 1000) / (now - lastAt))
    last = s.records
    lastAt = now
    const line = `events/s ${rate}  drops ${s.dropped}  rows stored ${rows}`
    if (onTerminal) process.stderr.write(`\r\x1b[2K${line}`)
    else logger.info({ eventsPerSecond: rate, drops: s.dropped, rowsStored: rows }, 'status')
  }, 2000)
  timer.unref()
  return () => {
    clearInterval(timer)
    if (onTerminal) process.stderr.write('\n')
  }
}
