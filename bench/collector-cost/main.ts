// bench/collector-cost: what the collector costs on a node, each run in a fresh process that
// starts the collector exactly as `ebbflow collect --kafka` does (startCollector + the Kafka
// publisher; every family, enrichment, redaction), publishing to a real local broker (acks=all,
// idempotent). The workload is real captured events: perl calls getppid at a paced rate in a
// child cgroup, with getppid recorded one by one (--security-syscalls getppid), so every call
// is a ring-buffer record decoded, enriched, encoded and published.
//   - cpu: collector CPU % at rest, at 1,000 and at 10,000 events/s (EBBFLOW_BENCH_CPU_SECONDS
//     each, default 20);
//   - memory: peak RSS (VmHWM) in Kubernetes mode watching 1,000 pods on its node (served by
//     tests/support/fake-kube-api.ts) at EBBFLOW_BENCH_RATE events/s (default 200,000) for
//     EBBFLOW_BENCH_SECONDS (default 60), with the breakdown: Node alone, after the imports,
//     attached with the pod index loaded, peak; sampled from this process too (the child's
//     /proc status and smaps by kind of mapping, V8's figures over IPC), for each variant of
//     EBBFLOW_BENCH_MEMORY_VARIANTS (default `launcher`: as bin/ebbflow starts `collect`;
//     `cli`: bin/ebbflow collect itself, its bundle included, sampled from outside only),
//     alternated over EBBFLOW_BENCH_MEMORY_ROUNDS;
//   - throughput: EBBFLOW_BENCH_STORM getppid records (default 2,000,000) as fast as perl makes
//     them; events acknowledged by the broker per collector CPU second (storm start → publisher
//     closed), and bytes per event on the broker's log (gzip, the default).
// The machine is shared: the collector also captures everything else running on it (that is
// what it is for); the report gives the load average and the events the collector saw.
// Prints one JSON report and writes it to bench/reports/collector-cost.json.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'

const env = process.env
const CPU_SECONDS = Number(env.EBBFLOW_BENCH_CPU_SECONDS ?? 20)
const RATE = Number(env.EBBFLOW_BENCH_RATE ?? 200_000)
const SECONDS = Number(env.EBBFLOW_BENCH_SECONDS ?? 60)
const STORM = Number(env.EBBFLOW_BENCH_STORM ?? 2_000_000)
const PODS = 1000
const CLIENT_ROUNDS = Number(env.EBBFLOW_BENCH_CLIENT_ROUNDS ?? 4)
const NODE = 'bench-node-1'

const status = (field: string) => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync('/proc/self/status', 'utf8'),
  )
  return m ? Number(m[1]) / 1024 : 0
}
const rssMiB = () => status('VmRSS')

interface Window {
  name: string
  rate: number // calls/s; 0: rest (ignored for a storm)
  seconds?: number
  /** A storm: this many calls as fast as perl makes them. */
  calls?: number
}
interface ChildInput {
  brokers: string
  kubeconfig?: string
  windows: Window[]
  /** Collector settings that differ from the defaults (the memory phase's variants). */
  overrides?: Record<string, string>
}

/** A perl script that calls getppid `rate` times a second for `seconds`, then prints the count. */
const pacedGetppid = (rate: number, seconds: number) =>
  `use Time::HiRes qw(time sleep); my ($r, $d) = (${rate}, ${seconds}); my $t0 = time; my $n = 0;
   while ((my $e = time - $t0) < $d) { my $target = $e * $r; while ($n < $target) { getppid(); $n++ } sleep(0.0005) }
   print "$n\\n";`

// ---- child: one collector, measured from the inside ----------------------------------------
async function child(input: ChildInput) {
  const nodeBaselineMiB = rssMiB() // before any of ours is loaded
  const { KafkaPublisher, loadCollectorConfig, loadEnrichConfig, ringBytesOf, startCollector } =
    await import('@ebbflow/collector')
  const { createLogger } = await import('@ebbflow/common')
  const { createCgroup } = await import('../../tests/support/cgroup.ts')
  const afterImportsMiB = rssMiB()
  const config = loadCollectorConfig(
    {
      kafkaBrokers: input.brokers,
      output: 'kafka',
      securitySyscalls: 'getppid',
      // The pod watch selects this node's pods by the collector's node name.
      ...(input.kubeconfig ? { nodeName: NODE } : {}),
      ...input.overrides,
    },
    {},
  )
  const enrichConfig = loadEnrichConfig(
    input.kubeconfig ? { kubernetes: 'on', kubeconfig: input.kubeconfig } : { kubernetes: 'off' },
    {},
  )
  const logger = createLogger('bench', 'warn')
  const publisher = new KafkaPublisher(config, logger)
  const collector = startCollector(config, enrichConfig, publisher, logger)
  // The node's pods listed (a deadline, not a sleep), then the producer connected.
  const listDeadline = Date.now() + 30_000
  while (input.kubeconfig && (collector.enrichment.pods?.size ?? 0) < PODS) {
    if (Date.now() > listDeadline)
      throw new Error(`${collector.enrichment.pods?.size ?? 0} of ${PODS} pods listed`)
    await new Promise((r) => setTimeout(r, 20))
  }
  await new Promise((r) => setTimeout(r, 2000))
  const podsListed = collector.enrichment.pods?.size ?? 0
  const attachedMiB = rssMiB()
  let peak = attachedMiB
  let peakExternal = 0
  let peakHeap = 0
  let peakArrayBuffers = 0
  let peakHeapTotal = 0
  let peakQueued = 0
  let peakHeld = 0
  let samples = 0
  // V8's view, sent to the parent, which samples /proc from outside (a starved event loop
  // samples itself too rarely to see the peak).
  const report = () =>
    process.send?.({
      v8: process.memoryUsage(),
      queued: publisher.stats().queuedBytes,
    })
  const sampler = setInterval(() => {
    report()
    samples++
    peak = Math.max(peak, rssMiB())
    const m = process.memoryUsage()
    peakExternal = Math.max(peakExternal, m.external / 2 ** 20)
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers / 2 ** 20)
    peakHeap = Math.max(peakHeap, m.heapUsed / 2 ** 20)
    peakHeapTotal = Math.max(peakHeapTotal, m.heapTotal / 2 ** 20)
    peakQueued = Math.max(peakQueued, publisher.stats().queuedBytes / 2 ** 20)
    peakHeld = Math.max(peakHeld, collector.enrichment.enricher.stats().pending)
  }, 250)
  const cg = createCgroup('bench-collector-cost')
  const results: Record<string, unknown>[] = []
  try {
    for (const w of input.windows) {
      const recordsBefore = collector.capture.stats().perFamily.syscall.records
      const publishedBefore = publisher.stats().publishedEvents
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let produced = 0
      if (w.rate === 0 && w.calls === undefined) {
        await new Promise((r) => setTimeout(r, w.seconds! * 1000))
      } else {
        const script =
          w.calls !== undefined
            ? `getppid() for 1..${w.calls}; print "${w.calls}\\n";`
            : pacedGetppid(w.rate, w.seconds!)
        const r = await cg.run(['perl', '-e', script])
        if (r.code !== 0) throw new Error(r.stderr)
        produced = Number(r.stdout.trim())
      }
      const last = w === input.windows.at(-1)
      if (last) {
        // Until the broker acknowledged everything: stop the capture, close the publisher.
        await collector.stop()
        await publisher.close()
      } else {
        await new Promise((r) => setTimeout(r, 500)) // the batches in flight
      }
      const cpu = process.cpuUsage(cpu0)
      const wall = (performance.now() - t0) / 1000
      const cpuSeconds = (cpu.user + cpu.system) / 1e6
      const stats = collector.capture.stats()
      const published = publisher.stats().publishedEvents - publishedBefore
      results.push({
        window: w.name,
        targetRate: w.calls !== undefined ? 'unpaced' : w.rate,
        wallSeconds: wall,
        produced,
        capturedRecords: stats.perFamily.syscall.records - recordsBefore,
        publishedEvents: published,
        droppedSoFar: stats.dropped,
        cpuSeconds,
        cpuPercent: (cpuSeconds / wall) * 100,
        publishedPerCpuSecond: published / cpuSeconds,
        loadAverage1m: loadavg()[0],
      })
    }
  } finally {
    clearInterval(sampler)
    await cg.remove()
  }
  const out = {
    memoryMiB: {
      nodeBaseline: nodeBaselineMiB,
      afterImports: afterImportsMiB,
      attached: attachedMiB,
      peakSampled: peak,
      peakVmHWM: status('VmHWM'),
      ringBuffersMapped: config.families.reduce((n, f) => n + ringBytesOf(config, f), 0) / 2 ** 20,
      peakHeapUsed: peakHeap,
      peakExternal: peakExternal, // Buffers and other memory V8 tracks outside its heap
      peakArrayBuffers,
      peakHeapTotal, // the V8 heap committed, used or not
      peakPublisherQueued: peakQueued,
      queueBudget: config.queueBudgetBytes / 2 ** 20,
      peakEventsHeldForMetadata: peakHeld,
      samples,
    },
    podsListed,
    windows: results,
    publisher: publisher.stats(),
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
  process.exit(0)
}

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]!))

// ---- client child: resident memory of the pod list+watch alone, one client per process -----
// `client-node`: @kubernetes/client-node's KubeConfig + CoreV1Api + ListWatch, as the collector
// used it until the thin client; `thin`: the collector's kube-client.ts + PodWatcher into a
// PodIndex. Each lists the node's pods and opens the watch, then reports VmRSS.
async function clientChild(which: string, kubeconfig: string) {
  const bare = rssMiB()
  // Both load the collector's enrichment modules and fill the same PodIndex: the difference is
  // the client alone.
  const { KubeClient, loadKubeconfig, PodIndex, PodWatcher } = await import(
    '@ebbflow/collector/enrich/index'
  )
  const { createLogger } = await import('@ebbflow/common')
  const index = new PodIndex({
    labelAllowlist: [],
    maxLabels: 32,
    functionLabels: [],
    deletedGraceMs: 60_000,
    maxPods: 10_000,
  })
  const baseline = rssMiB()
  let stop = async () => {}
  if (which === 'client-node') {
    const k8s = await import('@kubernetes/client-node')
    const kc = new k8s.KubeConfig()
    kc.loadFromFile(kubeconfig)
    const api = kc.makeApiClient(k8s.CoreV1Api)
    const fieldSelector = `spec.nodeName=${NODE}`
    const lw = new k8s.ListWatch<import('@kubernetes/client-node').V1Pod>(
      '/api/v1/pods',
      new k8s.Watch(kc),
      () => api.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    )
    lw.on('add', (pod) => index.upsert(pod))
    lw.on('update', (pod) => index.upsert(pod))
    lw.on('delete', (pod) => index.markDeleted(pod))
    await lw.start()
    stop = () => lw.stop()
  } else {
    const watcher = new PodWatcher(
      new KubeClient(loadKubeconfig(kubeconfig)),
      index,
      { nodeName: NODE, backoffMinMs: 100, backoffMaxMs: 1000, sweepIntervalMs: 10_000 },
      createLogger('bench', 'warn'),
    )
    watcher.start()
    stop = () => watcher.stop()
  }
  const deadline = Date.now() + 30_000
  while (index.size < PODS) {
    if (Date.now() > deadline) throw new Error(`${which}: ${index.size} of ${PODS} pods listed`)
    await new Promise((r) => setTimeout(r, 20))
  }
  await new Promise((r) => setTimeout(r, 500)) // the watch open
  const out = {
    which,
    bareMiB: bare,
    baselineMiB: baseline,
    listedMiB: rssMiB(),
    heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
    pods: index.size,
  }
  await stop()
  process.stdout.write(`${JSON.stringify(out)}\n`)
  process.exit(0)
}

if (process.argv[2] === '--client') await clientChild(process.argv[3]!, process.argv[4]!)

// ---- parent: broker, API server, one fresh process per measure -----------------------------
const { FakeKubeApi, makePod } = await import('../../tests/support/fake-kube-api.ts')
const { freePort, topicBytes } = await import('../../tests/support/kafka-broker.ts')
const { TOPICS } = await import('@ebbflow/common/wire')
const { probeFeatures } = await import('@ebbflow/native')
const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')

const kB = (text: string, field: string) => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  return m ? Number(m[1]) / 1024 : 0
}

// Resident MiB of a process by kind of mapping, from /proc/<pid>/smaps. glibc's non-main
// malloc arenas are mmapped heaps aligned to their 64 MiB maximum (HEAP_MAX_SIZE), which is how
// they are told from V8's pages (256 KiB-aligned) here: a heuristic, named as one.
function smapsByKind(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {}
  let kind = 'anon'
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line)
    if (head) {
      const path = head[3]!
      if (path.includes('bpf')) kind = 'bpfMaps'
      else if (path === '[heap]') kind = 'brkHeap'
      else if (path.startsWith('[stack')) kind = 'stack'
      else if (path.startsWith('/')) kind = 'files'
      else if (path !== '') kind = path
      else if (BigInt(`0x${head[1]}`) % (64n << 20n) === 0n) kind = 'mallocArenas64MiBAligned'
      else kind = 'anonOther'
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss) kinds[kind] = (kinds[kind] ?? 0) + Number(rss[1]) / 1024
  }
  return kinds
}

interface Outside {
  /** VmHWM read from outside just before the child exits. */
  vmHWM: number
  peakRss: number
  atPeak: Record<string, number>
  smapsAtPeak: Record<string, number>
  peakV8: Record<string, number>
  samples: number
}

const emptyOutside = (): Outside => ({
  vmHWM: 0,
  peakRss: 0,
  atPeak: {},
  smapsAtPeak: {},
  peakV8: {},
  samples: 0,
})

// Samples process `pid`'s /proc/<pid>/status every 100 ms into `outside` (and its smaps at a
// new peak, at most once a second), with V8's last figures when the process reports them.
function sampleOutside(pid: number, outside: Outside, v8: () => Record<string, number>) {
  let lastSmaps = 0
  return setInterval(() => {
    let text: string
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8')
    } catch {
      return // exited
    }
    const rss = kB(text, 'VmRSS')
    if (rss === 0) return // exiting: its mappings are gone
    outside.samples++
    outside.vmHWM = kB(text, 'VmHWM')
    if (rss <= outside.peakRss) return
    outside.peakRss = rss
    outside.atPeak = {
      rssAnon: kB(text, 'RssAnon'),
      rssFile: kB(text, 'RssFile'),
      rssShmem: kB(text, 'RssShmem'),
      threads: Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? 0),
      ...Object.fromEntries(Object.entries(v8()).map(([k, v]) => [k, v / 2 ** 20])),
    }
    // smaps of a large process costs a few ms: at most once a second, at a new peak.
    if (Date.now() - lastSmaps > 1000) {
      lastSmaps = Date.now()
      try {
        outside.smapsAtPeak = { rss, ...smapsByKind(pid) }
      } catch {}
    }
  }, 100)
}

// Asynchronous: the pod list/watch server lives in this process and must keep answering while
// a child runs (a spawnSync here left the children's pod lists unanswered). With `sample`, this
// process samples the child's /proc/<pid>/status and V8's figures it reports over IPC.
async function runNode(
  args: string[],
  opts: { nodeArgs?: string[]; env?: Record<string, string>; sample?: boolean } = {},
) {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), import.meta.filename, ...args], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ...opts.env },
  })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  const outside = emptyOutside()
  let lastV8: Record<string, number> = {}
  child.on('message', (m: { v8: Record<string, number>; queued: number }) => {
    lastV8 = { ...m.v8, publisherQueued: m.queued }
    for (const [k, v] of Object.entries(lastV8))
      outside.peakV8[k] = Math.max(outside.peakV8[k] ?? 0, v / 2 ** 20)
  })
  const sampler = opts.sample ? sampleOutside(child.pid!, outside, () => lastV8) : undefined
  const code = await new Promise<number | null>((r) => child.on('close', r))
  if (sampler) clearInterval(sampler)
  if (code !== 0) throw new Error(`${args[0]} ${args[1] ?? ''} process failed (exit ${code})`)
  const result = JSON.parse(out.trim().split('\n').at(-1)!)
  return opts.sample ? { ...result, outside } : result
}

interface MemoryVariant {
  overrides?: Record<string, string>
  nodeArgs?: string[]
  env?: Record<string, string>
}
// `launcher`: the settings `bin/ebbflow collect` and the DaemonSet
// (infra/k8s/collector-daemonset.yaml) start the collector with, kept equal by hand there; the
// others try one change each (`bare`: the previous session's start, its 64 MiB publisher queue,
// no launch settings; `mmap64k`: every malloc of 64 KiB or more its own mapping, returned to the
// kernel when freed, which tells live native memory from malloc's retained free space).
const LAUNCHER: MemoryVariant = {
  env: { MALLOC_ARENA_MAX: '2' },
  nodeArgs: ['--max-semi-space-size=2'],
}
const MEMORY_VARIANTS: Record<string, MemoryVariant> = {
  bare: { overrides: { queueBudgetBytes: String(64 << 20) } },
  queue16: {},
  arena2: { env: { MALLOC_ARENA_MAX: '2' } },
  semi2: { nodeArgs: ['--max-semi-space-size=2'] },
  v8: { nodeArgs: ['--max-semi-space-size=2', '--max-old-space-size=96'] },
  rings2: { overrides: { ringBufferBytes: String(2 << 20) } },
  launcher: LAUNCHER,
  mmap64k: { ...LAUNCHER, env: { ...LAUNCHER.env, MALLOC_MMAP_THRESHOLD_: '65536' } },
  launcherRings2: { ...LAUNCHER, overrides: { ringBufferBytes: String(2 << 20) } },
  // The rings' default before it became 2 MiB.
  launcherRings8: { ...LAUNCHER, overrides: { ringBufferBytes: String(8 << 20) } },
  all: {
    ...LAUNCHER,
    env: { ...LAUNCHER.env, MALLOC_MMAP_THRESHOLD_: '65536' },
    overrides: { ringBufferBytes: String(2 << 20) },
  },
}

// The memory phase's `cli` variant: `bin/ebbflow collect` itself, as an operator starts it (the
// bundle while it is current, the launch settings bin/ebbflow sets), in Kubernetes mode watching
// the same 1,000 pods, measured from outside only. This process makes the load; the events
// published come from the collector's closing log line (stderr); its CPU is read from /proc from the
// load's start to 1 s after the load ended (the batches in flight acknowledged), before SIGTERM.
async function runCli(brokers: string, kubeconfig: string, variant: CliVariant) {
  const { startCollect } = await import('../../tests/support/collect-process.ts')
  const { createCgroup } = await import('../../tests/support/cgroup.ts')
  const { threadCpuSeconds, threadCpuSince, until } = await import('../../tests/support/proc.ts')
  const watchesBefore = kube.openWatches
  const c = await startCollect(
    join(repo, 'bin/ebbflow'),
    [
      'collect',
      ...['--kafka', brokers, '--security-syscalls', 'getppid'],
      ...['--kubernetes', 'on', '--kubeconfig', kubeconfig, '--node-name', NODE],
      ...(variant.args ?? []),
    ],
    { env: variant.env },
  )
  const outside = emptyOutside()
  const sampler = sampleOutside(c.pid, outside, () => ({}))
  const cg = createCgroup('bench-collector-cli')
  try {
    // The node's pods listed and their watch open, then the producer connected.
    await until(
      'the pod watch',
      () => kube.openWatches,
      (n) => n > watchesBefore,
      30_000,
      20,
    )
    await new Promise((r) => setTimeout(r, 2000))
    const status = () => readFileSync(`/proc/${c.pid}/status`, 'utf8')
    const attached = kB(status(), 'VmRSS')
    const cpu0 = threadCpuSeconds(c.pid)
    const t0 = performance.now()
    const r = await cg.run(['perl', '-e', pacedGetppid(RATE, SECONDS)])
    if (r.code !== 0) throw new Error(r.stderr)
    await new Promise((r) => setTimeout(r, 1000))
    const threads = threadCpuSince(cpu0, c.pid)
    const cpuSeconds = Object.values(threads).reduce((a, b) => a + b, 0)
    const wall = (performance.now() - t0) / 1000
    const vmHWM = kB(status(), 'VmHWM')
    clearInterval(sampler)
    const code = await c.stop()
    if (code !== 0) throw new Error(`collect exited ${code}: ${c.stderr.slice(-2000)}`)
    const closing = `${c.stdout}\n${c.stderr}`
      .split('\n')
      .filter((l) => l.includes('publisher flushed and closed'))
      .map((l) => JSON.parse(l) as { stats: { publishedEvents: number; droppedEvents: object } })
      .at(-1)
    if (!closing) throw new Error(`no closing stats in collect's log: ${c.stderr.slice(-2000)}`)
    const produced = Number(r.stdout.trim())
    return {
      entry: c.entry.replace(`${repo}/`, ''),
      attachSeconds: c.attachSeconds,
      memoryMiB: { attached, peakVmHWM: vmHWM },
      outside,
      window: {
        window: `${RATE}/s`,
        targetRate: RATE,
        wallSeconds: wall,
        produced,
        publishedEvents: closing.stats.publishedEvents,
        cpuSeconds,
        threadCpuSeconds: threads,
        cpuPercent: (cpuSeconds / wall) * 100,
        publishedPerCpuSecond: closing.stats.publishedEvents / cpuSeconds,
        loadAverage1m: loadavg()[0],
      },
      publisher: closing.stats,
    }
  } finally {
    clearInterval(sampler)
    await c.stop().catch(() => undefined)
    await cg.remove()
  }
}

interface CliVariant {
  args?: string[]
  env?: Record<string, string>
}
// `cli` as bin/ebbflow starts it; the others try one change each: `cliMmap128k`, glibc's mmap
// threshold fixed at its default (128 KiB; setting it turns off the dynamic raise that moves
// large freed blocks into the heap); `cliRings1m`, 1 MiB rings for every family.
const CLI_VARIANTS: Record<string, CliVariant> = {
  cli: {},
  cliMmap128k: { env: { MALLOC_MMAP_THRESHOLD_: '131072' } },
  cliRings1m: { args: ['--ring-buffer-bytes', String(1 << 20)] },
}

const runChild = (input: ChildInput, opts: Parameters<typeof runNode>[1] = {}) =>
  runNode(['--child', JSON.stringify(input)], opts)

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-collector-cost-'))
const kube = await FakeKubeApi.start()
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0')
for (let i = 0; i < PODS; i++) {
  kube.add(
    makePod({
      uid: `${hex(i, 8)}-0000-4000-8000-${hex(i, 12)}`,
      name: `checkout-7d9f${hex(i, 4)}-x${i}`,
      namespace: `team-${i % 20}`,
      nodeName: NODE,
      containers: [{ name: 'api', id: hex(i, 64), image: `registry.example/checkout:${i}` }],
      labels: { app: 'checkout', 'pod-template-hash': '7d9f' },
      owner: { kind: 'ReplicaSet', name: 'checkout-7d9f' },
    }),
  )
}
let report: Record<string, unknown>
try {
  execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const port = await freePort()
  const brokers = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  const kubeconfig = kube.kubeconfig()
  // EBBFLOW_BENCH_PHASES: any of client, cpu, memory, storm (default all).
  const phases = (env.EBBFLOW_BENCH_PHASES ?? 'client,cpu,memory,storm').split(',')
  const skipped = { windows: [], memoryMiB: {} }
  // The pod list+watch alone, @kubernetes/client-node against the thin client, alternating.
  const clientRounds: Record<string, { baselineMiB: number; listedMiB: number }[]> = {
    'client-node': [],
    thin: [],
  }
  if (phases.includes('client')) {
    for (let round = 0; round < CLIENT_ROUNDS; round++) {
      for (const which of round % 2 === 0 ? ['client-node', 'thin'] : ['thin', 'client-node']) {
        clientRounds[which]!.push(await runNode(['--client', which, kubeconfig]))
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const client = Object.fromEntries(
    Object.entries(clientRounds).map(([k, rs]) => [
      k,
      {
        baselineMiB: median(rs.map((r) => r.baselineMiB)),
        listedMiB: median(rs.map((r) => r.listedMiB)),
        addedMiB: median(rs.map((r) => r.listedMiB - r.baselineMiB)),
        rounds: rs.length,
      },
    ]),
  )
  const cpu = !phases.includes('cpu')
    ? skipped
    : await runChild(
        {
          brokers,
          kubeconfig,
          windows: [
            { name: 'rest', rate: 0, seconds: CPU_SECONDS },
            { name: '1000/s', rate: 1000, seconds: CPU_SECONDS },
            { name: '10000/s', rate: 10_000, seconds: CPU_SECONDS },
          ],
        },
        { nodeArgs: LAUNCHER.nodeArgs, env: LAUNCHER.env },
      )
  // The memory phase's variants, alternated round by round (EBBFLOW_BENCH_MEMORY_VARIANTS,
  // EBBFLOW_BENCH_MEMORY_ROUNDS); the first listed is the one reported as `memory`.
  const variantNames = (env.EBBFLOW_BENCH_MEMORY_VARIANTS ?? 'launcher').split(',')
  const memoryRuns: Record<string, unknown>[] = []
  let memory: typeof skipped & { outside?: Outside; podsListed?: number } = skipped
  if (phases.includes('memory')) {
    const rounds = Number(env.EBBFLOW_BENCH_MEMORY_ROUNDS ?? 1)
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? variantNames : [...variantNames].reverse()
      for (const name of order) {
        const cli = CLI_VARIANTS[name]
        if (cli) {
          memoryRuns.push({
            variant: name,
            round,
            ...cli,
            ...(await runCli(brokers, kubeconfig, cli)),
          })
          continue
        }
        const v = MEMORY_VARIANTS[name]
        if (!v) throw new Error(`unknown memory variant ${name}`)
        const r = await runChild(
          {
            brokers,
            kubeconfig,
            windows: [{ name: `${RATE}/s`, rate: RATE, seconds: SECONDS }],
            overrides: v.overrides,
          },
          { nodeArgs: v.nodeArgs, env: v.env, sample: true },
        )
        memoryRuns.push({
          variant: name,
          round,
          ...v,
          memoryMiB: r.memoryMiB,
          outside: r.outside,
          window: r.windows[0],
          publisher: r.publisher,
        })
        if (name === variantNames[0] && memory === skipped) memory = r
      }
    }
  }
  const bytesBefore = topicBytes(join(dir, 'data'), TOPICS.syscall)
  const storm = !phases.includes('storm')
    ? { windows: [{ publishedEvents: 0 }] }
    : await runChild({
        brokers,
        kubeconfig,
        windows: [{ name: 'storm', rate: 0, calls: STORM }],
      })
  const stormWindow = storm.windows[0]
  const bytesPerEvent =
    (topicBytes(join(dir, 'data'), TOPICS.syscall) - bytesBefore) / stormWindow.publishedEvents
  report = {
    bench: 'collector-cost',
    machine: {
      kernel: probeFeatures().kernelRelease,
      cpus: cpus().length,
      node: process.version,
      loadAverage: loadavg(),
    },
    pods: PODS,
    podListWatchMemory: client,
    cpu: cpu.windows,
    memory: {
      ...memory.memoryMiB,
      podsListed: memory.podsListed,
      window: memory.windows[0],
      outside: memory.outside,
    },
    memoryRuns,
    throughput: { ...stormWindow, compression: 'gzip', bytesPerEventOnBroker: bytesPerEvent },
    targets: {
      peakRssMiB: 128,
      publishedPerCpuSecond: 500_000,
    },
  }
} finally {
  spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
  await kube.close()
}
const text = `${JSON.stringify(report, null, 2)}\n`
const reports = join(import.meta.dirname, '../reports')
mkdirSync(reports, { recursive: true })
writeFileSync(join(reports, 'collector-cost.json'), text)
process.stdout.write(text)
