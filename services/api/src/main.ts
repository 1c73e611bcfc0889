// Starts the API from its configuration: tokens, store, live tail, app, listener. `ebbflow api`
// and `ebbflow up` both call start; up hands it the store and the live tail it shares.
import { createLogger, type Logger } from '@ebbflow/common'
import { openStore, type Store } from '@ebbflow/store'
import { createApi } from './app.ts'
import { type ApiConfig, guardOf, limitsOf, loadApiConfig, readTokens } from './config.ts'
import { KafkaLiveSource } from './kafka-live.ts'
import type { LiveSource } from './live.ts'
import { startApiServer } from './server.ts'

export interface ApiDeps {
  /** The store to read; start opens the one config.store names when absent (and closes it). */
  store?: Store
  /** The live tail; absent, start reads the event topics of config.kafkaBrokers when set. */
  live?: LiveSource
  logger?: Logger
}

export interface RunningApi {
  url: string
  consoleUrl?: string
  /** Where the store is, for a start-up line: the data folder or the server URL. */
  storeWhere: string
  stop(): Promise<void>
}

export async function start(config: ApiConfig, deps: ApiDeps = {}): Promise<RunningApi> {
  const logger = deps.logger ?? createLogger('api', config.logLevel)
  // Read before anything opens: a bad file stops the start, and the API gets exactly its tokens.
  const tokens = config.tokensFile === undefined ? {} : readTokens(config.tokensFile)
  if (config.open) logger.warn('the API is open: every caller reads every namespace')
  const closers: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const close of closers.splice(0).reverse())
      await close().catch((err: unknown) => logger.warn({ err }, 'while stopping the api'))
  }
  try {
    let store = deps.store
    let storeWhere = 'shared'
    if (!store) {
      const opened = await openStore(config.store)
      store = opened.store
      storeWhere = opened.where
      closers.push(() => opened.store.close())
    }
    let live = deps.live
    if (!live && config.kafkaBrokers.length > 0) {
      const kafkaLive = new KafkaLiveSource(config.kafkaBrokers, logger)
      closers.push(() => kafkaLive.close())
      await kafkaLive.start()
      live = kafkaLive
    }
    const api = createApi({
      store,
      tokens,
      open: config.open,
      limits: limitsOf(config),
      graphiql: config.graphiql,
      introspection: config.introspection,
      logger,
      corsOrigins: config.corsOrigins,
      ...(live ? { live } : {}),
    })
    const server = await startApiServer({
      api,
      port: config.port,
      host: config.host,
      guard: guardOf(config),
    })
    closers.push(() => server.close())
    logger.info({ url: server.url, console: server.consoleUrl, store: storeWhere }, 'api listening')
    return {
      url: server.url,
      ...(server.consoleUrl ? { consoleUrl: server.consoleUrl } : {}),
      storeWhere,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

if (import.meta.main) {
  const logger = createLogger('api')
  start(loadApiConfig()).then(
    (api) => {
      const stop = () => void api.stop().then(() => process.exit(0))
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    },
    (err: unknown) => {
      logger.fatal({ err }, 'api failed to start')
      process.exitCode = 1
    },
  )
}
