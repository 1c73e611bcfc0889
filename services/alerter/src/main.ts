// Starts the alerter from its configuration: `ebbflow alert` calls runAlert.
import { createLogger, EbbflowError } from '@ebbflow/common'
import { serveMetrics } from '@ebbflow/common/metrics-server'
import { migrate, openStore } from '@ebbflow/common/store/index'
import { alerterOptionsOf, checkRules, runOnce, startAlerter } from './alerter.ts'
import { type AlerterConfigInput, loadAlerterConfig } from './config.ts'
import { AlerterMetrics } from './metrics.ts'
import { loadRules, RulesError } from './rules.ts'

export interface AlertRun {
  /** check and once have finished when runAlert resolves; scheduled runs until stop(). */
  mode: 'check' | 'once' | 'scheduled'
  stop(): Promise<void>
}

export async function runAlert(explicit: AlerterConfigInput = {}): Promise<AlertRun> {
  const config = loadAlerterConfig(explicit)
  const logger = createLogger('alert', config.logLevel)
  const rules = loadRules(config.rules)
  const { store, where } = await openStore(config.store)
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await store.close()
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
