// The collector's configuration: the only reader of process.env in this service. Every field
// documents its default; every invalid value is reported at once, and nothing falls back.
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ConfigError,
  commaList,
  DEFAULT_FAMILIES,
  DEFAULT_SECURITY_SYSCALLS,
  FAMILIES,
  type Family,
  LIMITS,
  LOG_LEVELS,
  type LogLevel,
  parseConfig,
  syscallNumber,
} from '@ebbflow/common'
import { z } from 'zod'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..')

const list = commaList

const powerOfTwo = (min: number) =>
  z.coerce
    .number()
    .int()
    .min(min)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')

export const collectorConfigSchema = z.object({
  /** Event families to capture (exec, net, syscall, file). Default: exec, net, syscall. */
  families: list
    .pipe(z.array(z.enum(FAMILIES as [Family, ...Family[]])).min(1))
    .prefault(DEFAULT_FAMILIES.join(',')),
  /** file family: how long repeats of one (cgroup, file, access) are only counted before the
   * next access is recorded again, with its process. Default: 60000 ms. */
  fileDedupWindowMs: z.coerce.number().int().min(1).max(86_400_000).default(60_000),
  /** Where events go: `json` prints one JSON object per line on stdout, `kafka` publishes
   * EventBatches to `kafkaBrokers`. Default: json. */
  output: z.enum(['json', 'kafka']).default('json'),
  /** Kafka bootstrap brokers, host:port, comma-separated. Required when output is kafka. */
  kafkaBrokers: list
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')))
    .prefault(''),
  /** This node's name: the Kafka key, EventBatch.node, the events' node and the pod watch's
   * `spec.nodeName` selector (enrichment takes it from here; nothing else reads NODE_NAME).
   * Default: NODE_NAME, else the host name. */
  nodeName: z.string().min(1).default(hostname()),
  /** Memory held by batches waiting for the broker; past it the oldest are dropped (and
   * counted). Default: 16 MiB: the collector is paid once per node, and at 200,000 events/s
   * 16 MiB of gzip-ready batches is ~1.5 s of a stalled broker (bench/collector-cost); a node
   * that must ride out longer outages raises it. */
  queueBudgetBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  /** Events per EventBatch, at most. Default: 5000. */
  batchMaxEvents: z.coerce.number().int().min(1).max(1_000_000).default(5000),
  /** Encoded bytes per EventBatch, about at most (a batch closes once past it). Default:
   * 512 KiB (below Kafka's 1 MiB default message size). */
  batchMaxBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(512 * 1024),
  /** Longest an event waits in a partial batch. Default: 100 ms. */
  lingerMs: z.coerce.number().int().min(0).max(60_000).default(100),
  /** Folder of the compiled BPF objects. Default: bpf/build of this checkout. */
  bpfDir: z.string().min(1).default(join(repoRoot, 'bpf/build')),
  /** How the net family learns which process accepted a connection: the per-syscall
   * tracepoints syscalls:sys_exit_accept{,4} (need tracefs; cost other syscalls ~10 ns), a
   * program on every syscall exit (tp_btf/sys_exit; ~70–100 ns per syscall), or auto (the
   * tracepoints when they attach, else sys-exit). Default: auto. */
  acceptHook: z.enum(['auto', 'syscall-tracepoints', 'sys-exit']).default('auto'),
  /**
   * Bytes of every family's ring buffer (a power of two, at least a page). Default: by family,
   * RING_BYTES_BY_FAMILY. The drain threads keep the rings near empty (a 3,000-exec storm lost
   * nothing with 512 KiB), so the ring only covers a drain starved of CPU; its pages are in the
   * collector's RSS twice (the data area is mapped twice for wrap-around): 8 MiB rings cost
   * 36 MiB more at start.
   */
  ringBufferBytes: powerOfTwo(4096).optional(),
  /**
   * Bytes that wait in a ring buffer before the kernel wakes the reader (which also polls every
   * 100 ms at most). Waking per record cost more than half the exec-storm overhead. 0 wakes on
   * every record. At most a quarter of the ring. Default: 64 KiB, or a quarter of a smaller ring.
   */
  ringWakeupBytes: z.coerce.number().int().min(0).optional(),
  /** argv bytes kept per exec, at most the kernel's cap. Default: 1024. */
  argsMax: z.coerce.number().int().min(0).max(LIMITS.ARGS_CAP).default(1024),
  /** Most processes read from /proc at start, so that processes already running (and exec
   * sessions already open) are known; 0 skips the read. Default: 65536 (a node runs far
   * fewer; the bound keeps a start on a runaway host short). */
  procScanMax: z.coerce.number().int().min(0).max(4_194_304).default(65_536),
  /** How often in-kernel counters (syscall counts, traffic, drops) are read. Default: 1000 ms. */
  counterIntervalMs: z.coerce.number().int().min(50).max(3_600_000).default(1000),
  /** Syscalls that emit one record each, with arguments. Default: the security set. */
  securitySyscalls: list.prefault(Object.keys(DEFAULT_SECURITY_SYSCALLS).join(',')),
  /** cgroup v2 mount where traffic counting attaches. Default: found in /proc/self/mountinfo. */
  cgroupRoot: z.string().min(1).optional(),
  /** Bytes per batch handed from the drain thread to JavaScript. Default: 256 KiB. */
  batchBytes: z.coerce
    .number()
    .int()
    .min(4096)
    .max(64 * 1024 * 1024)
    .default(256 * 1024),
  /** Longest a record waits in a partial batch. Default: 50 ms. */
  flushMs: z.coerce.number().int().min(1).max(10_000).default(50),
  /** Log level. Default: info. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Redact secrets in exec arguments with the default rules (redact.ts, README "Secrets in
   * command lines") before events leave the collector. Default: true. */
  redactDefaults: z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .default(true),
  /** JSON file of more redaction rules, `[{ "name", "arg"?, "nextArg"?, "binary"? }]`,
   * applied after the defaults. Default: none. */
  redactRulesFile: z.string().min(1).optional(),
  /** Kafka record batch compression: zstd, or gzip for a reader without zstd. zstd is 29 %
   * smaller and takes a quarter of gzip's compression CPU (bench/RESULTS.md, "collector cost");
   * the ingester, the API's live tail and ClickHouse's Kafka engine read both. Default: zstd. */
  kafkaCompression: z.enum(['gzip', 'zstd']).default('zstd'),
})

export type CollectorConfig = z.output<typeof collectorConfigSchema>
export type CollectorConfigInput = { [K in keyof z.input<typeof collectorConfigSchema>]?: string }

const ENV: Record<keyof CollectorConfigInput, string> = {
  families: 'EBBFLOW_FAMILIES',
  output: 'EBBFLOW_OUTPUT',
  kafkaBrokers: 'EBBFLOW_KAFKA',
  nodeName: 'NODE_NAME',
  queueBudgetBytes: 'EBBFLOW_QUEUE_BUDGET_BYTES',
  batchMaxEvents: 'EBBFLOW_BATCH_MAX_EVENTS',
  batchMaxBytes: 'EBBFLOW_BATCH_MAX_BYTES',
  lingerMs: 'EBBFLOW_LINGER_MS',
  bpfDir: 'EBBFLOW_BPF_DIR',
  acceptHook: 'EBBFLOW_ACCEPT_HOOK',
  ringBufferBytes: 'EBBFLOW_RING_BUFFER_BYTES',
  fileDedupWindowMs: 'EBBFLOW_FILE_DEDUP_WINDOW_MS',
  ringWakeupBytes: 'EBBFLOW_RING_WAKEUP_BYTES',
  argsMax: 'EBBFLOW_ARGS_MAX',
  procScanMax: 'EBBFLOW_PROC_SCAN_MAX',
  counterIntervalMs: 'EBBFLOW_COUNTER_INTERVAL_MS',
  securitySyscalls: 'EBBFLOW_SECURITY_SYSCALLS',
  cgroupRoot: 'EBBFLOW_CGROUP_ROOT',
  batchBytes: 'EBBFLOW_BATCH_BYTES',
  flushMs: 'EBBFLOW_FLUSH_MS',
  logLevel: 'EBBFLOW_LOG_LEVEL',
  redactDefaults: 'EBBFLOW_REDACT_DEFAULTS',
  redactRulesFile: 'EBBFLOW_REDACT_RULES_FILE',
  kafkaCompression: 'EBBFLOW_KAFKA_COMPRESSION',
}

/** The environment variable each setting reads (for help texts and the README table). */
export const collectorEnvNames: Readonly<Record<keyof CollectorConfigInput, string>> = ENV

/**
 * Each family's ring buffer bytes unless ringBufferBytes sets them all: 2 MiB for the families
 * whose records come at hundreds of thousands a second (a syscall or open storm: ~100 ms of
 * records at 200,000/s), 1 MiB for exec and net, whose rates are far lower (a 3,000-exec storm
 * used under 512 KiB); each MiB is 2 MiB of the collector's RSS (bench/RESULTS.md, issue 20).
 */
export const RING_BYTES_BY_FAMILY: Readonly<Record<Family, number>> = {
  syscall: 2 << 20,
  file: 2 << 20,
  exec: 1 << 20,
  net: 1 << 20,
}

/** The ring buffer bytes of `family`: the setting, or the family's default. */
export function ringBytesOf(
  config: Pick<CollectorConfig, 'ringBufferBytes'>,
  family: Family,
): number {
  return config.ringBufferBytes ?? RING_BYTES_BY_FAMILY[family]
}

/**
 * Builds the configuration from explicit values (CLI flags), then EBBFLOW_* variables, then
 * defaults. Throws ConfigError listing every problem.
 */
export function loadCollectorConfig(
  explicit: CollectorConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): CollectorConfig {
  const { data, problems } = parseConfig(collectorConfigSchema, ENV, explicit, env)
  if (data) {
    const smallestRing = Math.min(...data.families.map((f) => ringBytesOf(data, f)))
    if (data.ringWakeupBytes !== undefined && data.ringWakeupBytes > smallestRing / 4)
      problems.push(
        `ringWakeupBytes (${ENV.ringWakeupBytes}): ${data.ringWakeupBytes} is more than a quarter of the smallest ring buffer (${smallestRing} bytes); a fuller ring would drop records before its reader wakes`,
      )
    if (data.output === 'kafka' && data.kafkaBrokers.length === 0)
      problems.push(`kafkaBrokers (${ENV.kafkaBrokers}): required when output is kafka`)
    for (const name of data.securitySyscalls) {
      if (syscallNumber(name) === undefined)
        problems.push(
          `securitySyscalls (${ENV.securitySyscalls}): unknown syscall ${JSON.stringify(name)}`,
        )
    }
  }
  if (problems.length > 0 || !data) throw new ConfigError(problems)
  return data
}

export type { LogLevel }
