// One table per service: each configuration field's flag (when not its name in kebab-case),
// value placeholder and help line. The variables and defaults come from the services' own
// configuration modules. Loaded per command, so `collect` never loads the API or the store.
import type { SettingsTable } from './options.ts'

export async function collectorSettings(): Promise<SettingsTable> {
  const { collectorConfigSchema, collectorEnvNames } = await import('@ebbflow/collector/config')
  return {
    schema: collectorConfigSchema,
    env: collectorEnvNames,
    help: {
      families: { value: 'list', description: 'event families: exec,net,syscall,file' },
      fileDedupWindowMs: {
        value: 'ms',
        description: 'file family: repeats of one (cgroup, file, access) only counted this long',
      },
      output: {
        value: 'kind',
        description:
          'json: one JSON object per event on stdout; kafka: EventBatches to --kafka (--kafka alone implies it)',
      },
      kafkaBrokers: {
        flag: 'kafka',
        value: 'brokers',
        description: 'Kafka brokers, host:port,...',
      },
      nodeName: {
        value: 'name',
        description: 'this node: the Kafka key, the events’ node',
        defaultText: 'the host name',
      },
      queueBudgetBytes: {
        value: 'n',
        description: 'memory of batches waiting for the transport; past it the oldest are dropped',
      },
      batchMaxEvents: { value: 'n', description: 'events per EventBatch, at most' },
      batchMaxBytes: { value: 'n', description: 'encoded bytes per EventBatch, about at most' },
      lingerMs: { value: 'ms', description: 'longest an event waits in a partial batch' },
      bpfDir: {
        value: 'dir',
        description: 'compiled BPF objects',
        defaultText: 'bpf/build of this checkout',
      },
      acceptHook: {
        value: 'hook',
        description: 'auto, syscall-tracepoints or sys-exit: how net learns who accepted',
      },
      ringBufferBytes: {
        value: 'n',
        description: 'ring buffer bytes of every family (a power of two)',
        defaultText: '2 MiB for syscall and file, 1 MiB for exec and net',
      },
      ringWakeupBytes: {
        value: 'n',
        description: 'bytes waiting in a ring before its reader is woken; 0 wakes per record',
        defaultText: '64 KiB, or a quarter of a smaller ring',
      },
      argsMax: { value: 'n', description: 'argv bytes kept per exec' },
      procScanMax: {
        value: 'n',
        description: 'most processes read from /proc at start; 0 skips the read',
      },
      counterIntervalMs: { value: 'ms', description: 'how often in-kernel counters are read' },
      securitySyscalls: {
        value: 'list',
        description: 'syscalls recorded one by one, with arguments',
        defaultText: 'the security set',
      },
      cgroupRoot: {
        value: 'dir',
        description: 'cgroup v2 mount',
        defaultText: 'found in /proc/self/mountinfo',
      },
      batchBytes: { value: 'n', description: 'bytes per batch from the drain thread' },
      flushMs: { value: 'ms', description: 'longest a record waits in a partial drain batch' },
      logLevel: { value: 'level', description: 'log level' },
      redactDefaults: {
        value: 'bool',
        description: 'redact secrets in exec arguments with the default rules',
      },
      redactRulesFile: { value: 'file', description: 'JSON file of more redaction rules' },
      kafkaCompression: { value: 'codec', description: 'Kafka record compression: gzip or zstd' },
    },
  }
}

export async function enrichSettings(): Promise<SettingsTable> {
  const { enrichConfigSchema, enrichEnvNames } = await import('@ebbflow/collector/enrich/config')
  return {
    schema: enrichConfigSchema,
    env: enrichEnvNames,
    help: {
      kubernetes: { value: 'mode', description: 'auto, on or off: name events after pods' },
      kubeconfig: {
        value: 'file',
        description: 'kubeconfig of the API server',
        defaultText: 'the in-cluster service account when present',
      },
      lateMetadataMs: {
        value: 'ms',
        description: 'longest an event waits for its pod before it is sent unresolved',
      },
      deletedPodGraceMs: { value: 'ms', description: 'how long a deleted pod stays resolvable' },
      maxPods: { value: 'n', description: 'most pods cached' },
      maxPendingEvents: { value: 'n', description: 'most events held for late metadata' },
      labelAllowlist: {
        value: 'keys',
        description: 'pod label keys kept on events',
        defaultText: 'all',
      },
      maxLabels: { value: 'n', description: 'most labels kept per pod' },
      functionLabels: { value: 'keys', description: 'extra pod label keys naming a function' },
      cgroupCacheMax: { value: 'n', description: 'most cgroups remembered by id' },
      cgroupRescanMinMs: {
        value: 'ms',
        description: 'shortest time between two walks of the cgroup mount',
      },
      kubeBackoffMs: { value: 'ms', description: 'first wait before a failed list/watch retries' },
    },
  }
}

const storeHelp: SettingsTable['help'] = {
  dataDir: { value: 'dir', description: "chDB's data folder, when no --clickhouse" },
  clickhouse: { value: 'url', description: 'ClickHouse server URL; when set, it is the store' },
  retentionDays: { value: 'n', description: 'days rows are kept' },
  kafkaEngine: {
    value: 'brokers',
    description:
      'also let ClickHouse consume the topics itself: Kafka engine tables and views into the raw tables',
  },
  cluster: {
    value: 'name',
    description: 'ClickHouse cluster: Replicated tables ON CLUSTER with Distributed tables',
  },
  logLevel: { value: 'level', description: 'log level' },
}

/** The store's settings; `migrate` alone uses the Kafka engine and cluster ones. */
export async function storeSettings(
  omit: readonly string[] = [],
  use: 'migrate' | 'service' = 'service',
): Promise<SettingsTable> {
  const { storeConfigSchema, storeEnvNames } = await import('@ebbflow/store/config')
  return {
    schema: storeConfigSchema,
    env: storeEnvNames,
    help: storeHelp,
    omit: use === 'service' ? ['kafkaEngine', 'cluster', ...omit] : omit,
  }
}

export async function ingesterSettings(omit: readonly string[] = []): Promise<SettingsTable> {
  const { ingesterConfigSchema, ingesterEnvNames } = await import('@ebbflow/ingester/config')
  return {
    schema: ingesterConfigSchema,
    env: ingesterEnvNames,
    omit,
    help: {
      kafkaBrokers: {
        flag: 'kafka',
        value: 'brokers',
        description: 'Kafka brokers, host:port,...',
      },
      groupId: { value: 'id', description: 'consumer group' },
      topics: { value: 'list', description: 'topics read' },
      dlqTopic: { value: 'topic', description: 'dead-letter topic' },
      maxRows: { value: 'n', description: 'most rows per insert' },
      maxBytes: { value: 'n', description: 'most record bytes per insert' },
      maxWaitMs: { value: 'ms', description: 'longest a block waits to fill' },
      bookkeepingMs: {
        value: 'ms',
        description: 'in-process: longest ledger and lag rows are held to be written together',
      },
      slowInsertMs: { value: 'ms', description: 'an insert slower than this is logged' },
      concurrency: { value: 'n', description: 'partitions processed at once' },
      sessionTimeoutMs: {
        value: 'ms',
        description: 'how long the group waits for a silent member',
      },
      storeFailureExitMs: {
        value: 'ms',
        description:
          'a store error no retry cures (a missing table) is retried this long, then ingest exits 1; 0 never',
      },
      metricsPort: { value: 'n', description: 'port of /metrics; 0 any free one, -1 none' },
      metricsHost: { value: 'addr', description: 'address /metrics listens on' },
      knativePort: {
        value: 'n',
        description: 'serve a Knative KafkaSource sink on this port instead of joining a group',
      },
      migrate: { value: 'bool', description: 'apply pending migrations at start' },
    },
  }
}

export async function apiSettings(): Promise<SettingsTable> {
  const { apiConfigSchema, apiEnvNames } = await import('@ebbflow/api/config')
  return {
    schema: apiConfigSchema,
    env: apiEnvNames,
    help: {
      port: { value: 'n', description: 'GraphQL port, 0 for any free one' },
      host: { value: 'addr', description: 'address to listen on' },
      graphiql: { value: 'bool', description: 'GraphiQL in a browser at /graphql' },
      introspection: { value: 'bool', description: 'answer introspection' },
      tokensFile: {
        value: 'file',
        description: 'JSON {"<token>": ["namespace", ...]}; "*" reads every namespace',
      },
      open: { value: 'bool', description: 'serve every namespace without tokens' },
      logLevel: { value: 'level', description: 'log level' },
      corsOrigins: {
        value: 'list',
        description: 'origins a browser may call the API from besides its own',
      },
      allowedHosts: {
        value: 'list',
        description: 'Host names answered besides 127.0.0.1, localhost, [::1] and --host',
      },
      maxBodyBytes: { value: 'n', description: 'largest request body; larger is answered 413' },
      kafkaBrokers: {
        flag: 'kafka',
        value: 'brokers',
        description: 'read the event topics here for the live tail',
      },
      defaultPageSize: { value: 'n', description: 'rows of a page when `first` is not given' },
      maxPageSize: { value: 'n', description: 'largest `first`/`last`' },
      maxDepth: { value: 'n', description: 'deepest query accepted' },
      maxAliases: { value: 'n', description: 'aliases per query' },
      maxCost: { value: 'n', description: 'cost of a query, at most' },
      maxTokens: { value: 'n', description: 'tokens of a query document, at most' },
      queryTimeoutSeconds: { value: 's', description: 'max_execution_time of each statement' },
      maxResultRows: { value: 'n', description: 'max_result_rows of each statement' },
      maxMemoryBytes: { value: 'n', description: 'max_memory_usage of each statement' },
    },
  }
}

export async function alerterSettings(omit: readonly string[] = []): Promise<SettingsTable> {
  const { alerterConfigSchema, alerterEnvNames } = await import('@ebbflow/alerter/config')
  return {
    schema: alerterConfigSchema,
    env: alerterEnvNames,
    omit,
    help: {
      rules: { value: 'path', description: 'a rule file or a folder of *.yaml' },
      alertmanagers: {
        flag: 'alertmanager',
        value: 'urls',
        description: 'Alertmanager base URLs, comma-separated',
      },
      webhooks: { flag: 'webhook', value: 'urls', description: 'webhook URLs, comma-separated' },
      once: { value: false, description: 'evaluate every rule once and exit, for a CronJob' },
      check: {
        value: false,
        description: 'run every rule once without rows and report broken ones by file and line',
      },
      resend: { value: 'duration', description: 're-send firing alerts this often' },
      lagMargin: { value: 'duration', description: 'added to the store’s ingestion lag' },
      deliveryHorizon: {
        value: 'duration',
        description: 'undelivered webhook transitions younger than this are delivered',
      },
      httpTimeout: { value: 'duration', description: 'timeout of one notification request' },
      webhookAttempts: { value: 'n', description: 'attempts per webhook delivery' },
      replica: {
        value: 'name',
        description: "this replica's name",
        defaultText: 'hostname-pid',
      },
      metricsPort: { value: 'n', description: 'port of /metrics; 0 any free one, -1 none' },
      metricsHost: { value: 'addr', description: 'address /metrics listens on' },
      migrate: { value: 'bool', description: 'apply pending migrations at start' },
      logLevel: { value: 'level', description: 'log level' },
    },
  }
}
