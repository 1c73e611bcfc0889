// `ebbflow up`: everything in one process. Collector → in-process queue → ingester → chDB in
// a data folder → GraphQL API (and alert rules when named); or, with --kafka and --clickhouse,
// the same pieces against a real broker and server. This module builds each service's
// configuration and calls the same start the service's own command calls, handing them the
// parts they share: the transport, the store and the live tail.
import type { AlerterConfig } from '@ebbflow/alerter'
import type { ApiConfig, LiveEvent, MemoryLiveSource } from '@ebbflow/api'
import type { CaptureSink, CollectorStartConfig, Publisher } from '@ebbflow/collector'
import {
  ConfigError,
  ConfigProblems,
  type CounterEvent,
  createLogger,
  type Logger,
  type RecordEvent,
} from '@ebbflow/common'
import { eventWallNs } from '@ebbflow/common/event-time'
import type { IngesterConfig, IngestMetrics } from '@ebbflow/ingester'
import { type GeneratedOption, withDefaults } from './options.ts'

/** Settings `up` defaults differently from the services' own commands, and why. */
export const UP_DEFAULTS = {
  // One user on one machine: GraphiQL next to the console, field suggestions on.
  graphiql: 'true',
  introspection: 'true',
  // Latency of kernel event → queryable row is what one machine's user sees, and at a few
  // blocks a second these waits were most of it (bench/up-latency, stage metrics): the drain
  // hands a partial batch over after 10 ms instead of 50, the publisher closes one after 20 ms
  // instead of 100, and the in-process ingester stores a block at most 50 ms after its first
  // record (or oldest event) instead of 250. Side by side at 10,000 events/s: p50 0.33–0.41 s
  // instead of 0.49–0.55, for about 7 % more CPU (bench/RESULTS.md, "up latency").
  flushMs: '10',
  lingerMs: '20',
  maxWaitMs: '50',
  // No /metrics listener unless asked for.
  metricsPort: '-1',
} as const

/**
 * Hands every event to the live tail of the API while someone listens, and the wall time of
 * each delivered batch's first event to `delivered` (the first hand-off of the ingester's
 * stage metrics: the capture's drain ordered it, so the first is about the oldest).
 */
function liveTap(
  live: MemoryLiveSource,
  offsetNs: bigint,
  delivered: (oldestNs: bigint) => void,
): CaptureSink {
  const publish = (events: readonly (RecordEvent | CounterEvent)[]) => {
    if (live.subscriberCount === 0) return
    // The live tail's events have the shape they have read from Kafka: the wall time in place
    // of the node's boot clock (a copy per event, only while someone listens).
    for (const { bootNs, ...event } of events)
      live.publish({ ...event, timeNs: eventWallNs(offsetNs, bootNs) } as LiveEvent)
  }
  return {
    records: (events) => {
      const first = events[0]
      if (first) delivered(eventWallNs(offsetNs, first.bootNs))
      publish(events)
    },
    counters: publish,
  }
}

export interface Up {
  apiUrl: string
  /**
   * Resolves when the ingester gave up on a store error no retry cures (with --kafka, after
   * storeFailureExitMs, as `ebbflow ingest` does): the caller stops everything and exits
   * non-zero for its supervisor to restart it. Absent for the in-process queue, whose records
   * live only in this process: it keeps retrying rather than lose them.
   */
  failed?: Promise<Error>
  stop(): Promise<void>
}

interface UpConfigs {
  collector: CollectorStartConfig
  ingester: IngesterConfig
  api: ApiConfig
  alerter: AlerterConfig | undefined
  logger: Logger
}

/** Every configuration, read before anything starts, so every problem shows at once. */
async function configsOf(
  values: Readonly<Record<string, string>>,
  options: readonly GeneratedOption[],
  env: NodeJS.ProcessEnv,
): Promise<UpConfigs> {
  const [{ loadCollectorConfig, loadEnrichConfig }, { loadIngesterConfig }, { loadApiConfig }] =
    await Promise.all([
      import('@ebbflow/collector'),
      import('@ebbflow/ingester'),
      import('@ebbflow/api'),
    ])
  const { loadAlerterConfig } = await import('@ebbflow/alerter')
  const gathered = new ConfigProblems()
  const attempt = <T>(load: () => T) => gathered.attempt(load)
  const defaulted = withDefaults(
    values,
    {
      ...UP_DEFAULTS,
      // Open on 127.0.0.1 by default; a tokens file closes it.
      open: (values.tokensFile ?? env.EBBFLOW_API_TOKENS_FILE) ? 'false' : 'true',
    },
    options,
    env,
  )
  const collector = attempt(() => loadCollectorConfig(defaulted, env))
  const kafka = (collector?.kafkaBrokers.length ?? 0) > 0
  const enrich = attempt(() => loadEnrichConfig(defaulted, env))
  const ingester = attempt(() => loadIngesterConfig(defaulted, env, { inProcess: !kafka }))
  const api = attempt(() => loadApiConfig(defaulted, env))
  // Alert rules are optional here: with --rules (or EBBFLOW_RULES) they run on the same store.
  // The ingester migrates it and serves /metrics, so the alerter does neither.
  const alerter =
    (defaulted.rules ?? env.EBBFLOW_RULES)
      ? attempt(() => loadAlerterConfig({ ...defaulted, migrate: 'false', metricsPort: '-1' }, env))
      : null
  if (!collector || !enrich || !ingester || !api || alerter === undefined)
    throw new ConfigError(gathered.problems)
  return {
    collector: { ...collector, output: kafka ? 'kafka' : 'json', enrich },
    ingester,
    api,
    alerter: alerter ?? undefined,
    logger: createLogger('up', collector.logLevel),
  }
}

export async function startUp(
  values: Readonly<Record<string, string>>,
  options: readonly GeneratedOption[],
  up: { status?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<Up> {
  const config = await configsOf(values, options, env)
  const { logger } = config
  const {
    InProcessPublisher,
    KafkaPublisher,
    start: startCollector,
  } = await import('@ebbflow/collector')
  const { start: startIngester } = await import('@ebbflow/ingester')
  const { MemoryLiveSource, start: startApi } = await import('@ebbflow/api')
  const { openStore } = await import('@ebbflow/store')

  // Stopped in this order: capture and its flush, then what reads the store, then the store.
  const stops: { collector?: () => Promise<unknown>; rest: (() => Promise<unknown>)[] } = {
    rest: [],
  }
  const stopAll = async () => {
    const all = [stops.collector, ...stops.rest.splice(0).reverse()]
    stops.collector = undefined
    for (const stop of all)
      await stop?.().catch((err: unknown) => logger.warn({ err }, 'while stopping'))
  }
  try {
    // The collector first: its start checks the capabilities, before any folder is created or
    // any port listens. Until the ingester reads, the transport holds what it publishes.
    const inProcess =
      config.collector.output === 'kafka'
        ? undefined
        : new InProcessPublisher(config.collector, logger)
    const publisher: Publisher = inProcess ?? new KafkaPublisher(config.collector, logger)
    const live = new MemoryLiveSource()
    stops.rest.push(async () => live.close())
    // The ingester's metrics exist once it started; events delivered before are not timed.
    let stages: IngestMetrics | undefined
    const collector = await startCollector(config.collector, {
      logger,
      publisher,
      tap: liveTap(live, publisher.clock.offsetNs, (ns) => stages?.stage('delivered', [ns])),
    })
    stops.collector = () => collector.stop()

    const { store, where, kind } = await openStore(config.ingester.store)
    stops.rest.push(() => store.close())
    const ingester = await startIngester(config.ingester, {
      logger,
      store,
      ...(inProcess ? { inProcess: inProcess.transport.consume() } : {}),
    })
    stops.rest.push(() => ingester.stop())
    stages = ingester.metrics

    const api = await startApi(config.api, { store, live, logger })
    stops.rest.push(() => api.stop())

    if (config.alerter) {
      const { start: startAlerter } = await import('@ebbflow/alerter')
      const alerter = await startAlerter(config.alerter, { store, logger })
      stops.rest.push(() => alerter.stop())
    }

    const report = collector.collector.capture.report
    logger.info(
      {
        families: report.families.map((f) => `${f.family} (${f.programs.join(', ')})`),
        kernel: report.features.kernelRelease,
        enrichment: collector.collector.enrichment.mode,
        console: api.consoleUrl,
        api: api.url,
        store: `${kind} ${where}`,
        migrationsApplied: ingester.migrationsApplied,
      },
      `ebbflow is up: console at ${api.consoleUrl ?? '(not served)'}, GraphQL at ${api.url}, data in ${where}`,
    )
    const status = startStatus(up, collector.collector.capture, ingester.metrics, logger)
    stops.rest.push(async () => status())
    const failed = ingester.failed?.then((err) => {
      logger.error({ err }, 'giving up on the store; exiting for a restart')
      return err
    })
    return { apiUrl: api.url, stop: stopAll, ...(failed ? { failed } : {}) }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/**
 * One status line every 2 s on a terminal (or with --status true): events/s, drops, rows
 * stored. Returns the function that stops it.
 */
function startStatus(
  up: { status?: string },
  capture: { stats(): { records: number; dropped: number } },
  metrics: { rows: { get(): Promise<{ values: { value: number }[] }> } },
  logger: Logger,
): () => void {
  const onTerminal = process.stderr.isTTY === true
  if (!(onTerminal || up.status === 'true')) return () => {}
  let last = capture.stats().records
  let lastAt = performance.now()
  const timer = setInterval(async () => {
    const s = capture.stats()
    const { values } = await metrics.rows.get()
    const rows = values.reduce((n, v) => n + v.value, 0)
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
