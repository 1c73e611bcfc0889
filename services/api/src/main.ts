// Starts the API: configuration, store, app, listener. `ebbflow api` calls runApi.
import { createLogger } from '@ebbflow/common'
import { loadStoreConfig, openStore } from '@ebbflow/common/store/index'
import { createApi } from './app.ts'
import { type ApiConfigInput, guardOf, limitsOf, loadApiConfig, readTokens } from './config.ts'
import { KafkaLiveSource } from './kafka-live.ts'
import type { LiveSource } from './live.ts'
import { type ApiServer, startApiServer } from './server.ts'

export async function runApi(
  explicit: ApiConfigInput & { dataDir?: string; clickhouse?: string } = {},
  live?: LiveSource,
): Promise<ApiServer> {
  const { dataDir, clickhouse, ...apiInput } = explicit
  const config = loadApiConfig(apiInput)
  const storeConfig = loadStoreConfig({
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(clickhouse === undefined ? {} : { clickhouse }),
  })
  const logger = createLogger('api', config.logLevel)
  const tokens = config.tokensFile === undefined ? {} : readTokens(config.tokensFile)
  if (config.open) logger.warn('the API is open: every caller reads every namespace')
  const { store, where, kind } = await openStore(storeConfig)
  let kafkaLive: KafkaLiveSource | undefined
  if (!live && config.kafkaBrokers.length > 0) {
    kafkaLive = new KafkaLiveSource(config.kafkaBrokers, logger)
    try {
      await kafkaLive.start()
    } catch (err) {
      await store.close()
      throw err
    }
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
    serializeQueries: kind === 'chdb',
    corsOrigins: config.corsOrigins,
    ...(live ? { live } : {}),
  })
  const server = await startApiServer({
    api,
    port: config.port,
    host: config.host,
    guard: guardOf(config),
  })
  logger.info({ url: server.url, console: server.consoleUrl, store: where }, 'api listening')
  return {
    url: server.url,
    ...(server.consoleUrl ? { consoleUrl: server.consoleUrl } : {}),
    close: async () => {
      await server.close()
      await kafkaLive?.close()
      await store.close()
    },
  }
}

if (import.meta.main) {
  const logger = createLogger('api')
  runApi().then(
    (server) => {
      const stop = () => void server.close().then(() => process.exit(0))
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    },
    (err: unknown) => {
      logger.fatal({ err }, 'api failed to start')
      process.exitCode = 1
    },
  )
}
