// The `ebbflow` command. Each subcommand turns its flags into the configurations of the
// services it runs (flags first, then EBBFLOW_* variables, then defaults: each service's config
// reads them) and calls their start. The flags are generated from the configuration schemas
// (options.ts, settings.ts); only the subcommand run loads its services.

import { readFileSync } from 'node:fs'
import { ConfigError, ConfigProblems, createLogger, EbbflowError } from '@ebbflow/common'
import { Command, Option } from 'commander'
import {
  type FieldHelp,
  type GeneratedOption,
  optionsOf,
  type SettingsTable,
  valuesOf,
} from './options.ts'
import {
  alerterSettings,
  apiSettings,
  collectorSettings,
  enrichSettings,
  ingesterSettings,
  storeSettings,
} from './settings.ts'

interface CommandSpec {
  name: string
  description: string
  tables(): Promise<SettingsTable[]>
  /** Help that this command words differently from the services' own tables. */
  overrides?: Readonly<Record<string, Partial<FieldHelp>>>
  /** Options that are no configuration field. */
  extra?: Option[]
  run(
    values: Record<string, string>,
    parsed: Record<string, unknown>,
    options: readonly GeneratedOption[],
  ): Promise<void>
}

const COMMANDS: CommandSpec[] = [
  {
    name: 'collect',
    description: 'capture kernel events on this machine',
    tables: async () => [await collectorSettings(), await enrichSettings()],
    async run(values) {
      // --kafka alone means publishing there.
      if (values.kafkaBrokers !== undefined) values.output ??= 'kafka'
      const { loadCollectorConfig, loadEnrichConfig, start } = await import('@ebbflow/collector')
      const gathered = new ConfigProblems()
      // Both configurations are read before either is used, so every problem shows at once.
      const config = gathered.attempt(() => loadCollectorConfig(values))
      const enrich = gathered.attempt(() => loadEnrichConfig(values))
      if (!config || !enrich) throw new ConfigError(gathered.problems)
      const collector = await start({ ...config, enrich })
      await waitForSignal()
      await collector.stop()
      // Everything is flushed and closed here. In Kubernetes mode the client library keeps a
      // pooled TCP connection to the API server open after the watch is aborted, which held
      // the process for 20-40 s after SIGTERM (measured 28.6 s; 0.08 s without Kubernetes):
      // that socket carries nothing of ours, so it does not get to decide when we exit.
      setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref()
    },
  },
  {
    name: 'ingest',
    description:
      'read EventBatches from Kafka (a consumer group) into ClickHouse or chDB; dead letters to ebbflow.dlq.v1',
    tables: async () => [await ingesterSettings(), await storeSettings()],
    async run(values) {
      const { loadIngesterConfig, start } = await import('@ebbflow/ingester')
      const config = loadIngesterConfig(values)
      const logger = createLogger('ingest', config.store.logLevel)
      const ingester = await start(config, { logger })
      const ended = await Promise.race([
        waitForSignal().then((signal) => ({ signal })),
        ...(ingester.failed ? [ingester.failed.then((error) => ({ error }))] : []),
      ])
      if ('error' in ended) {
        // Nothing past the stored blocks is committed: a restarted ingester takes them up.
        logger.error({ err: ended.error }, 'giving up on the store; exiting for a restart')
        await ingester.stop()
        throw ended.error
      }
      logger.info({ signal: ended.signal }, 'stopping: finishing the block in flight')
      await ingester.stop()
    },
  },
  {
    name: 'api',
    description: 'serve the GraphQL API at /graphql (port 4000 on 127.0.0.1 by default)',
    // The API never migrates: the store's retention is not its to set.
    tables: async () => [await apiSettings(), await storeSettings(['retentionDays'])],
    async run(values) {
      const { loadApiConfig, start } = await import('@ebbflow/api')
      const api = await start(loadApiConfig(values))
      await waitForSignal()
      await api.stop()
    },
  },
  {
    name: 'up',
    description:
      'everything in one process: capture → in-process queue → ingester → chDB → GraphQL API',
    // What `up` decides itself: the collector's output (the in-process queue, or Kafka with
    // --kafka), the ingester's source, the alerter's one-shot modes.
    tables: async () => [
      { ...(await collectorSettings()), omit: ['output'] },
      await enrichSettings(),
      await ingesterSettings(['knativePort']),
      await apiSettings(),
      await alerterSettings(['once', 'check']),
      await storeSettings(),
    ],
    overrides: {
      kafkaBrokers: {
        description: 'publish to and ingest from these brokers instead of the in-process queue',
      },
      clickhouse: { description: 'store in this ClickHouse server instead of chDB' },
      rules: {
        description: 'evaluate these alert rules in-process (a file or a folder of *.yaml)',
        defaultText: 'none: no alerting',
      },
      open: { defaultText: 'true unless a tokens file is given' },
      graphiql: { defaultText: 'true' },
      introspection: { defaultText: 'true' },
      maxWaitMs: { defaultText: '50' },
      lingerMs: { defaultText: '20' },
      flushMs: { defaultText: '10' },
      metricsPort: { description: "port of the ingester's /metrics", defaultText: '-1, none' },
      migrate: { description: 'apply pending migrations at start (the ingester does)' },
    },
    extra: [
      new Option('--status <bool>', 'log a status line every 2 s (default: on a terminal only)'),
    ],
    async run(values, parsed, options) {
      const { startUp } = await import('./up.ts')
      const status = parsed.status === undefined ? {} : { status: String(parsed.status) }
      const up = await startUp(values, options, status)
      const ended = await Promise.race([
        waitForSignal().then((signal) => ({ signal })),
        ...(up.failed ? [up.failed.then((error) => ({ error }))] : []),
      ])
      await up.stop()
      // Nothing past the stored blocks is committed: a restarted `up` takes them up again.
      if ('error' in ended) throw ended.error
    },
  },
  {
    name: 'alert',
    description:
      'evaluate SQL alert rules on a schedule; state in the store; notify Alertmanager and webhooks',
    tables: async () => [await alerterSettings(), await storeSettings()],
    async run(values) {
      const { loadAlerterConfig, start } = await import('@ebbflow/alerter')
      const run = await start(loadAlerterConfig(values))
      if (run.mode !== 'scheduled') return
      await waitForSignal()
      await run.stop()
    },
  },
  {
    name: 'migrate',
    description: 'apply pending ClickHouse schema migrations (infra/clickhouse/migrations)',
    tables: async () => [await storeSettings([], 'migrate')],
    extra: [
      new Option('--print', 'print the statements instead of running them (no store needed)'),
      new Option(
        '--recreate-missing',
        'create again the tables and views of applied migrations that are gone (their rows are not restored)',
      ),
    ],
    async run(values, parsed) {
      await migrateCommand(values, parsed.print === true, parsed.recreateMissing === true)
    },
  },
]

const program = new Command('ebbflow')
  .description(
    'eBPF capture of execs, TCP connections and syscalls, named after pod, container and function',
  )
  .version(
    (
      JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string
      }
    ).version,
  )
  .showHelpAfterError()

// Only the command run gets its options (and loads its services): `collect` never loads the
// API or the store.
const invoked = process.argv[2] === 'help' ? process.argv[3] : process.argv[2]
for (const spec of COMMANDS) {
  const command = program.command(spec.name).description(spec.description)
  if (spec.name !== invoked) continue
  const options = optionsOf(await spec.tables(), spec.overrides)
  for (const { option } of options) command.addOption(option)
  for (const option of spec.extra ?? []) command.addOption(option)
  command.action((parsed: Record<string, unknown>) =>
    spec.run(valuesOf(options, parsed), parsed, options),
  )
}

async function migrateCommand(
  values: Record<string, string>,
  print: boolean,
  recreateMissing: boolean,
): Promise<void> {
  // Loaded here, not at the top: chDB is a large native library the collector never needs.
  const {
    loadStoreConfig,
    migrate,
    openStore,
    readMigrations,
    renderStatements,
    kafkaEngineStatements,
    kafkaEngineDropStatements,
    BATCH_SCHEMA,
  } = await import('@ebbflow/store')
  const { TOPICS } = await import('@ebbflow/common/wire')
  const { PROTO_DIR } = await import('@ebbflow/proto')
  // The server finds the proto under its format_schema_path; chDB (no server config) by path.
  // Dropped and created again: a second run replaces the route's definitions.
  const kafkaEngine = (chdb: boolean) =>
    config.kafkaEngine
      ? [
          ...kafkaEngineDropStatements(TOPICS),
          ...kafkaEngineStatements({
            brokers: config.kafkaEngine,
            topics: TOPICS,
            schema: chdb ? `${PROTO_DIR}/${BATCH_SCHEMA}` : BATCH_SCHEMA,
          }),
        ]
      : []
  const config = loadStoreConfig(values)
  const { cluster } = config
  if (print) {
    for (const m of readMigrations()) {
      process.stdout.write(`-- ${String(m.version).padStart(4, '0')}_${m.name}\n`)
      for (const statement of renderStatements(m, {
        retentionDays: config.retentionDays,
        cluster,
      }))
        process.stdout.write(`${statement};\n\n`)
    }
    if (config.kafkaEngine) process.stdout.write('-- Kafka engine\n')
    for (const statement of kafkaEngine(!config.clickhouse))
      process.stdout.write(`${statement};\n\n`)
    return
  }
  const logger = createLogger('migrate', config.logLevel)
  const { store, where, kind } = await openStore(config)
  try {
    const result = await migrate(store, {
      retentionDays: config.retentionDays,
      cluster,
      onApplied: (m) => logger.info({ version: m.version, migration: m.name }, 'migration applied'),
      onRetentionChanged: (table, from, to) =>
        logger.info({ table, from, to }, 'retention changed (MODIFY TTL)'),
      recreateMissing,
    })
    if (result.recreated.length > 0)
      logger.warn(
        { recreated: result.recreated },
        'tables and views of applied migrations were missing and are created again (empty)',
      )
    logger.info(
      {
        store: where,
        applied: result.applied.length,
        upToDate: result.skipped.length,
        retentionChanged: result.retentionChanged.length,
      },
      result.applied.length === 0 ? 'schema up to date' : 'schema migrated',
    )
    const engine = kafkaEngine(kind === 'chdb')
    for (const statement of engine) await store.exec(statement)
    if (engine.length > 0)
      logger.info(
        { brokers: config.kafkaEngine, statements: engine.length },
        'Kafka engine tables and views in place',
      )
  } finally {
    await store.close()
  }
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      resolve(signal)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  const message =
    err instanceof ConfigError || err instanceof EbbflowError
      ? err.message
      : String((err as Error)?.stack ?? err)
  process.stderr.write(`ebbflow: ${message}\n`)
  process.exitCode = err instanceof ConfigError ? 2 : 1
}
