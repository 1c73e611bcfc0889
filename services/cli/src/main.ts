// The `ebbflow` command. Each subcommand turns its flags into a service's typed config (flags
// first, then EBBFLOW_* variables, then defaults) and starts that service.

import {
  type CaptureSink,
  JsonLinesSink,
  KafkaPublisher,
  loadCollectorConfig,
  loadEnrichConfig,
  startCollector,
} from '@ebbflow/collector'
import { ConfigError, ConfigProblems, createLogger, EbbflowError } from '@ebbflow/common'
import { Command, Option } from 'commander'

const program = new Command('ebbflow')
  .description(
    'eBPF capture of execs, TCP connections and syscalls, named after pod, container and function',
  )
  .showHelpAfterError()

program
  .command('collect')
  .description('capture kernel events on this machine')
  .addOption(
    new Option(
      '--families <list>',
      'exec,net,syscall,file (default exec,net,syscall; env EBBFLOW_FAMILIES)',
    ),
  )
  .addOption(
    new Option(
      '--output <kind>',
      'json: one JSON object per event on stdout; kafka: EventBatches to --kafka (env EBBFLOW_OUTPUT)',
    ),
  )
  .addOption(
    new Option(
      '--kafka <brokers>',
      'publish to these Kafka brokers, host:port,... (sets --output kafka; env EBBFLOW_KAFKA)',
    ),
  )
  .addOption(
    new Option(
      '--ring-buffer-bytes <n>',
      'ring buffer size per family (env EBBFLOW_RING_BUFFER_BYTES)',
    ),
  )
  .addOption(
    new Option(
      '--ring-wakeup-bytes <n>',
      'bytes waiting in a ring before its reader is woken; 0 wakes per record (env EBBFLOW_RING_WAKEUP_BYTES)',
    ),
  )
  .addOption(new Option('--args-max <n>', 'argv bytes kept per exec (env EBBFLOW_ARGS_MAX)'))
  .addOption(
    new Option(
      '--counter-interval-ms <n>',
      'counter read interval (env EBBFLOW_COUNTER_INTERVAL_MS)',
    ),
  )
  .addOption(
    new Option(
      '--security-syscalls <list>',
      'syscalls recorded one by one (env EBBFLOW_SECURITY_SYSCALLS)',
    ),
  )
  .addOption(new Option('--bpf-dir <dir>', 'compiled BPF objects (env EBBFLOW_BPF_DIR)'))
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .addOption(
    new Option(
      '--kubernetes <mode>',
      'auto, on or off: name events after pods (env EBBFLOW_KUBERNETES)',
    ),
  )
  .addOption(new Option('--kubeconfig <file>', 'kubeconfig of the API server (env KUBECONFIG)'))
  .addOption(new Option('--node-name <name>', 'this node (env NODE_NAME)'))
  .addOption(
    new Option(
      '--function-labels <keys>',
      'extra pod label keys naming a function (env EBBFLOW_FUNCTION_LABELS)',
    ),
  )
  .action(async (flags: Record<string, string | undefined>) => {
    const { kafka, kubernetes, kubeconfig, nodeName, functionLabels, ...rest } = definedOnly(flags)
    const explicit: Record<string, string> = rest
    if (kafka !== undefined) {
      explicit.kafkaBrokers = kafka
      explicit.output ??= 'kafka'
    }
    if (nodeName !== undefined) explicit.nodeName = nodeName
    const enrichExplicit = definedOnly({ kubernetes, kubeconfig, nodeName, functionLabels })
    const gathered = new ConfigProblems()
    const attempt = <T>(load: () => T) => gathered.attempt(load)
    // Both configurations are read before either is used, so every problem shows at once.
    const config = attempt(() => loadCollectorConfig(explicit))
    const enrichConfig = attempt(() => loadEnrichConfig(enrichExplicit))
    if (!config || !enrichConfig) throw new ConfigError(gathered.problems)
    const logger = createLogger('collector', config.logLevel)
    const publisher = config.output === 'kafka' ? new KafkaPublisher(config, logger) : undefined
    const sink: CaptureSink = publisher ?? new JsonLinesSink(process.stdout)
    const collector = startCollector(config, enrichConfig, sink, logger)
    await waitForSignal()
    await collector.stop()
    if (publisher) logger.info({ stats: await publisher.close() }, 'publisher closed')
    // Everything is flushed and closed here. In Kubernetes mode the client library keeps a
    // pooled TCP connection to the API server open after the watch is aborted, which held
    // the process for 20-40 s after SIGTERM (measured 28.6 s; 0.08 s without Kubernetes):
    // that socket carries nothing of ours, so it does not get to decide when we exit.
    setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref()
  })

program
  .command('ingest')
  .description(
    'read EventBatches from Kafka (a consumer group) into ClickHouse or chDB; dead letters to ebbflow.dlq.v1',
  )
  .addOption(new Option('--kafka <brokers>', 'Kafka brokers, host:port,... (env EBBFLOW_KAFKA)'))
  .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL (env EBBFLOW_CLICKHOUSE)'))
  .addOption(
    new Option(
      '--data-dir <dir>',
      "chDB's data folder when no --clickhouse (env EBBFLOW_DATA_DIR; default ./.ebbflow-data)",
    ),
  )
  .addOption(new Option('--group-id <id>', 'consumer group (env EBBFLOW_GROUP_ID)'))
  .addOption(new Option('--topics <list>', 'topics read (env EBBFLOW_TOPICS)'))
  .addOption(new Option('--dlq-topic <topic>', 'dead-letter topic (env EBBFLOW_DLQ_TOPIC)'))
  .addOption(new Option('--max-rows <n>', 'most rows per insert (env EBBFLOW_INGEST_MAX_ROWS)'))
  .addOption(
    new Option('--max-bytes <n>', 'most record bytes per insert (env EBBFLOW_INGEST_MAX_BYTES)'),
  )
  .addOption(
    new Option('--max-wait-ms <n>', 'longest a fetch waits (env EBBFLOW_INGEST_MAX_WAIT_MS)'),
  )
  .addOption(
    new Option('--metrics-port <n>', 'port of /metrics, -1 for none (env EBBFLOW_METRICS_PORT)'),
  )
  .addOption(
    new Option(
      '--knative-port <n>',
      'serve a Knative KafkaSource sink on this port instead of joining a group (env EBBFLOW_KNATIVE_PORT)',
    ),
  )
  .addOption(new Option('--retention-days <n>', 'days rows are kept (env EBBFLOW_RETENTION_DAYS)'))
  .addOption(
    new Option('--migrate <bool>', 'apply pending migrations at start (env EBBFLOW_MIGRATE)'),
  )
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .action(async (flags: Record<string, string | undefined>) => {
    const { kafka, ...rest } = definedOnly(flags)
    const explicit: Record<string, string> = rest
    if (kafka !== undefined) explicit.kafkaBrokers = kafka
    const { loadIngesterConfig, startIngester } = await import('@ebbflow/ingester')
    const config = loadIngesterConfig(explicit)
    const logger = createLogger('ingest', config.store.logLevel)
    const ingester = await startIngester(config, logger)
    const signal = await waitForSignal()
    logger.info({ signal }, 'stopping: finishing the block in flight')
    await ingester.stop()
  })

program
  .command('api')
  .description('serve the GraphQL API at /graphql (port 4000 on 127.0.0.1 by default)')
  .addOption(
    new Option(
      '--kafka <brokers>',
      'read the event topics here for the live tail (env EBBFLOW_KAFKA)',
    ),
  )
  .addOption(new Option('--port <n>', 'port, 0 for any free one (env EBBFLOW_PORT)'))
  .addOption(new Option('--host <addr>', 'address to listen on (env EBBFLOW_HOST)'))
  .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL (env EBBFLOW_CLICKHOUSE)'))
  .addOption(new Option('--data-dir <dir>', "chDB's data folder (env EBBFLOW_DATA_DIR)"))
  .addOption(
    new Option(
      '--tokens-file <file>',
      'JSON {"<token>": ["namespace", ...]} (env EBBFLOW_API_TOKENS_FILE)',
    ),
  )
  .addOption(
    new Option('--open <bool>', 'serve every namespace without tokens (env EBBFLOW_API_OPEN)'),
  )
  .addOption(new Option('--graphiql <bool>', 'GraphiQL in a browser (env EBBFLOW_GRAPHIQL)'))
  .addOption(
    new Option('--introspection <bool>', 'answer introspection (env EBBFLOW_INTROSPECTION)'),
  )
  .addOption(guardOption('cors'))
  .addOption(guardOption('hosts'))
  .addOption(guardOption('body'))
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .action(async (flags: Record<string, string | undefined>) => {
    const { runApi } = await import('@ebbflow/api')
    const { kafka, ...rest } = definedOnly(flags)
    const server = await runApi(kafka === undefined ? rest : { ...rest, kafkaBrokers: kafka })
    await waitForSignal()
    await server.close()
  })

program
  .command('up')
  .description(
    'everything in one process: capture → in-process queue → ingester → chDB → GraphQL API',
  )
  .addOption(new Option('--data-dir <dir>', "chDB's data folder (env EBBFLOW_DATA_DIR)"))
  .addOption(new Option('--port <n>', 'GraphQL port (env EBBFLOW_PORT; default 4000)'))
  .addOption(new Option('--host <addr>', 'GraphQL address (env EBBFLOW_HOST; default 127.0.0.1)'))
  .addOption(
    new Option(
      '--families <list>',
      'exec,net,syscall,file (default exec,net,syscall; env EBBFLOW_FAMILIES)',
    ),
  )
  .addOption(
    new Option(
      '--kafka <brokers>',
      'publish to and ingest from these brokers instead of the in-process queue (env EBBFLOW_KAFKA)',
    ),
  )
  .addOption(
    new Option(
      '--clickhouse <url>',
      'store in this ClickHouse server instead of chDB (env EBBFLOW_CLICKHOUSE)',
    ),
  )
  .addOption(new Option('--retention-days <n>', 'days rows are kept (env EBBFLOW_RETENTION_DAYS)'))
  .addOption(
    new Option(
      '--tokens-file <file>',
      'require bearer tokens for the API (env EBBFLOW_API_TOKENS_FILE; default: open on 127.0.0.1)',
    ),
  )
  .addOption(
    new Option(
      '--rules <path>',
      'evaluate these alert rules in-process (a file or folder of *.yaml, e.g. infra/alerts; env EBBFLOW_RULES)',
    ),
  )
  .addOption(
    new Option('--alertmanager <urls>', 'send alerts to Alertmanager (env EBBFLOW_ALERTMANAGER)'),
  )
  .addOption(new Option('--webhook <urls>', 'post alert transitions here (env EBBFLOW_WEBHOOK)'))
  .addOption(guardOption('cors'))
  .addOption(guardOption('hosts'))
  .addOption(guardOption('body'))
  .addOption(
    new Option('--status <bool>', 'log a status line every 2 s (default: on a terminal only)'),
  )
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .action(async (flags: Record<string, string | undefined>) => {
    const { startUp } = await import('./up.ts')
    const up = await startUp(definedOnly(flags))
    await waitForSignal()
    await up.stop()
  })

program
  .command('alert')
  .description(
    'evaluate SQL alert rules on a schedule; state in the store; notify Alertmanager and webhooks',
  )
  .addOption(new Option('--rules <path>', 'a rule file or a folder of *.yaml (env EBBFLOW_RULES)'))
  .addOption(
    new Option(
      '--alertmanager <urls>',
      'Alertmanager base URLs, comma-separated (env EBBFLOW_ALERTMANAGER)',
    ),
  )
  .addOption(new Option('--webhook <urls>', 'webhook URLs, comma-separated (env EBBFLOW_WEBHOOK)'))
  .addOption(
    new Option(
      '--once',
      'evaluate every rule once and exit, for a CronJob (env EBBFLOW_ALERT_ONCE)',
    ),
  )
  .addOption(
    new Option(
      '--check',
      'run every rule once without rows and report broken ones by file and line (env EBBFLOW_ALERT_CHECK)',
    ),
  )
  .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL (env EBBFLOW_CLICKHOUSE)'))
  .addOption(new Option('--data-dir <dir>', "chDB's data folder (env EBBFLOW_DATA_DIR)"))
  .addOption(
    new Option(
      '--resend <duration>',
      're-send firing alerts this often (env EBBFLOW_ALERT_RESEND; 1m)',
    ),
  )
  .addOption(new Option('--replica <name>', "this replica's name (env EBBFLOW_ALERT_REPLICA)"))
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .action(async (flags: Record<string, string | boolean | undefined>) => {
    const { alertmanager, webhook, once, check, ...rest } = flags
    const explicit: Record<string, string> = definedOnly(rest as Record<string, string | undefined>)
    if (alertmanager !== undefined) explicit.alertmanagers = String(alertmanager)
    if (webhook !== undefined) explicit.webhooks = String(webhook)
    if (once) explicit.once = 'true'
    if (check) explicit.check = 'true'
    const { runAlert } = await import('@ebbflow/alerter')
    const run = await runAlert(explicit)
    if (run.mode !== 'scheduled') return
    await waitForSignal()
    await run.stop()
  })

program
  .command('migrate')
  .description('apply pending ClickHouse schema migrations (infra/clickhouse/migrations)')
  .addOption(
    new Option(
      '--data-dir <dir>',
      "chDB's data folder (env EBBFLOW_DATA_DIR; default ./.ebbflow-data)",
    ),
  )
  .addOption(new Option('--clickhouse <url>', 'ClickHouse server URL (env EBBFLOW_CLICKHOUSE)'))
  .addOption(
    new Option(
      '--retention-days <n>',
      'days rows are kept (env EBBFLOW_RETENTION_DAYS; default 30)',
    ),
  )
  .addOption(
    new Option(
      '--cluster <name>',
      'ClickHouse cluster: Replicated tables ON CLUSTER with Distributed tables over them (env EBBFLOW_CLUSTER)',
    ),
  )
  .addOption(
    new Option('--print', 'print the statements instead of running them (no store needed)'),
  )
  .addOption(
    new Option(
      '--kafka-engine <brokers>',
      'also let ClickHouse consume the topics itself: Kafka engine tables and views into the raw tables (env EBBFLOW_KAFKA_ENGINE)',
    ),
  )
  .addOption(new Option('--log-level <level>', 'log level (env EBBFLOW_LOG_LEVEL)'))
  .action(async (flags: Record<string, string | boolean | undefined>) => {
    const { print, ...rest } = flags
    const explicit = definedOnly(rest as Record<string, string | undefined>)
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
    } = await import('@ebbflow/common/store/index')
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
    const config = loadStoreConfig(explicit)
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
        onApplied: (m) =>
          logger.info({ version: m.version, migration: m.name }, 'migration applied'),
        onRetentionChanged: (table, from, to) =>
          logger.info({ table, from, to }, 'retention changed (MODIFY TTL)'),
      })
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
  })

function definedOnly(flags: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(flags).filter((e): e is [string, string] => e[1] !== undefined),
  )
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

/** The API's HTTP guard flags, shared by `api` and `up`. */
function guardOption(which: 'cors' | 'hosts' | 'body'): Option {
  switch (which) {
    case 'cors':
      return new Option(
        '--cors-origins <list>',
        'origins a browser may call the API from besides its own (env EBBFLOW_API_CORS_ORIGINS; default none)',
      )
    case 'hosts':
      return new Option(
        '--allowed-hosts <list>',
        'Host names answered besides 127.0.0.1, localhost, [::1] and --host (env EBBFLOW_API_ALLOWED_HOSTS)',
      )
    case 'body':
      return new Option(
        '--max-body-bytes <n>',
        'largest request body, larger is answered 413 (env EBBFLOW_API_MAX_BODY_BYTES; default 1 MiB)',
      )
  }
}
