// The `ebbflow` command. Each subcommand turns its flags into a service's typed config (flags
// first, then EBBFLOW_* variables, then defaults) and starts that service.

import { JsonLinesSink, loadCollectorConfig, startCollector } from '@ebbflow/collector'
import { ConfigError, EbbflowError } from '@ebbflow/common'
import { Command, Option } from 'commander'

const program = new Command('ebbflow')
  .description(
    'eBPF capture of execs, TCP connections and syscalls, named after pod, container and function',
  )
  .showHelpAfterError()

program
  .command('collect')
  .description('capture kernel events on this machine')
  .addOption(new Option('--families <list>', 'exec,net,syscall (env EBBFLOW_FAMILIES)'))
  .addOption(
    new Option('--output <kind>', 'json: one JSON object per event on stdout (env EBBFLOW_OUTPUT)'),
  )
  .addOption(new Option('--buffer-mode <mode>', 'auto, ring or perf (env EBBFLOW_BUFFER_MODE)'))
  .addOption(
    new Option(
      '--ring-buffer-bytes <n>',
      'ring buffer size per family (env EBBFLOW_RING_BUFFER_BYTES)',
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
  .action(async (flags: Record<string, string | undefined>) => {
    const config = loadCollectorConfig(definedOnly(flags))
    const collector = startCollector(config, new JsonLinesSink(process.stdout))
    await waitForSignal()
    await collector.stop()
  })

for (const [name, issue] of [
  ['up', 'run everything in one process'],
  ['ingest', 'write events to ClickHouse'],
  ['api', 'serve the GraphQL API'],
  ['alert', 'run alert rules'],
  ['migrate', 'apply ClickHouse migrations'],
] as const) {
  program
    .command(name)
    .description(`${issue} (not built yet)`)
    .allowUnknownOption()
    .action(() => {
      throw new EbbflowError(
        'NOT_IMPLEMENTED',
        `\`ebbflow ${name}\` is not built yet; only \`ebbflow collect\` is available in this version`,
      )
    })
}

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
