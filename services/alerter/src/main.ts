// Starts the alerter from its configuration: `ebbflow alert` and `ebbflow up` call start.
import { createLogger, EbbflowError, type Logger } from '@ebbflow/common'
import { serveMetrics } from '@ebbflow/common/metrics-server'
import { migrate, openStore, type Store } from '@ebbflow/store'
import { alerterOptionsOf, checkRules, runOnce, startAlerter } from './alerter.ts'
import type { AlerterConfig } from './config.ts'
import { AlerterMetrics } from './metrics.ts'
import { loadRules, RulesError } from './rules.ts'

export interface AlerterStartDeps {
  logger?: Logger
  /** The store to read and keep state in; start opens config.store when absent (and closes it). */
  store?: Store
}

export interface AlertRun {
  /** check and once have finished when start resolves; scheduled runs until stop(). */
  mode: 'check' | 'once' | 'scheduled'
  stop(): Promise<void>
}

export async function start(config: AlerterConfig, deps: AlerterStartDeps = {}): Promise<AlertRun> {
  const logger = deps.logger ?? createLogger('alert', config.logLevel)
  const rules = loadRules(config.rules)
  const { store, where } = deps.store
    ? { store: deps.store, where: 'shared' }
    : await openStore(config.store)
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    if (!deps.store) await store.close()
  }
  try {
    if (config.migrate) await migrate(store, { retentionDays: config.store.retentionDays })
    if (config.check) {
      const problems = await checkRules(store, rules)
      await close()
      if (problems.length > 0) throw new RulesError(problems)
      logger.info({ rules: rules.length }, 'every rule checked')
      return { mode: 'check', stop: async () => {} }
    }
    const options = alerterOptionsOf(config)
    if (config.once) {
      const { results, failures } = await runOnce(rules, options, { store, logger })
      await close()
      logger.info({ results }, 'evaluated once')
      if (failures.length > 0)
        throw new EbbflowError(
          'ALERT_STORE_FAILED',
          `could not evaluate ${failures.map((f) => `${f.rule} (${f.error.message})`).join(', ')}`,
          { retriable: true },
        )
      return { mode: 'once', stop: async () => {} }
    }
    const metrics = new AlerterMetrics()
    const served =
      config.metricsPort >= 0
        ? await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost)
        : undefined
    const running = startAlerter(rules, options, { store, logger, metrics })
    logger.info(
      {
        rules: rules.map((r) => r.name),
        store: where,
        alertmanagers: config.alertmanagers.length,
        webhooks: config.webhooks.length,
      },
      'alerter running',
    )
    if (served) logger.info({ port: served.port }, 'metrics at /metrics')
    return {
      mode: 'scheduled',
      stop: async () => {
        await running.stop()
        await new Promise((resolve) => (served ? served.server.close(resolve) : resolve(undefined)))
        await close()
      },
    }
  } catch (err) {
    await close().catch(() => undefined)
    throw err
  }
}
