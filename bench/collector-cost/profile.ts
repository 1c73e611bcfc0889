// bench/collector-cost/profile.ts: where the collector's JavaScript time goes under a storm.
// The collector is composed as `ebbflow collect --kafka` composes it (every family, host-mode
// enrichment, redaction, a real local broker); perl makes EBBFLOW_BENCH_STORM getppid calls
// (default 500,000), each recorded. The V8 sampling profiler starts after the BPF objects are
// loaded, so the profile holds the storm rather than the start (its SIGPROF made loading fail
// with EAGAIN until the addon held signals during the load), and stops once the broker
// acknowledged everything. Prints the functions with the most self time, the CPU
// seconds of the storm, and writes the .cpuprofile to bench/reports/ for a closer look.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'

/** EBBFLOW_BENCH_STORM_KIND=exec: EBBFLOW_BENCH_STORM × /bin/true from sh (default 3,000)
 * instead of the getppid storm: where the collector's time goes per exec (each a fork, an
 * exec and an exit record). */
const EXEC_STORM = process.env.EBBFLOW_BENCH_STORM_KIND === 'exec'
const STORM = Number(process.env.EBBFLOW_BENCH_STORM ?? (EXEC_STORM ? 3_000 : 500_000))
const FAMILY = EXEC_STORM ? 'exec' : 'syscall'
/** EBBFLOW_BENCH_PROFILE=0: CPU figures only, without the profiler's own cost; =heap: V8's
 * sampling heap profiler instead of the CPU one (bytes allocated by function, what the
 * scavenger threads then spend their time on). */
const PROFILE = process.env.EBBFLOW_BENCH_PROFILE !== '0'
const HEAP = process.env.EBBFLOW_BENCH_PROFILE === 'heap'
/** EBBFLOW_BENCH_RAW=0: every syscall record decoded into an event object, as before the
 * collector wrote them from the ring's bytes (the A side of a side-by-side run). */
const RAW = process.env.EBBFLOW_BENCH_RAW !== '0'
const repo = join(import.meta.dirname, '../..')
const kafkaSh = join(repo, 'infra/kafka/kafka.sh')

const { KafkaPublisher, loadCollectorConfig, loadEnrichConfig, startCollector, TOPICS } =
  await import('@ebbflow/collector')
const { createLogger } = await import('@ebbflow/common')
const { createCgroup } = await import('../../tests/support/cgroup.ts')
const { freePort, topicBytes } = await import('../../tests/support/kafka-broker.ts')
const { threadCpuSeconds, threadCpuSince } = await import('../../tests/support/proc.ts')

interface HeapNode {
  callFrame: ProfileNode['callFrame']
  selfSize: number
  children: HeapNode[]
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-collector-profile-'))
try {
  execFileSync(kafkaSh, ['fetch'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const port = await freePort()
  const brokers = execFileSync(kafkaSh, ['start', '--port', String(port), '--dir', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  // The environment is passed on (it was not: EBBFLOW_QUEUE_BUDGET_BYTES and the other
  // publisher settings were ignored). The queue holds the whole storm unless told otherwise:
  // this bench measures CPU per acknowledged event, and a flood outruns the broker while the
  // JavaScript thread is busy decoding (see bench/RESULTS.md), so a smaller budget drops.
  const config = loadCollectorConfig(
    {
      kafkaBrokers: brokers,
      output: 'kafka',
      securitySyscalls: 'getppid',
      queueBudgetBytes: process.env.EBBFLOW_QUEUE_BUDGET_BYTES ?? String(256 << 20),
    },
    process.env,
  )
  const logger = createLogger('bench', 'warn')
  const publisher = new KafkaPublisher(config, logger)
  // Without RAW the sink offers no raw writer, so enrichment asks for event objects.
  const sink = RAW
    ? publisher
    : {
        records: publisher.records.bind(publisher),
        counters: publisher.counters.bind(publisher),
      }
  const collector = startCollector(
    config,
    loadEnrichConfig({ kubernetes: 'off' }, {}),
    sink,
    logger,
  )
  await new Promise((r) => setTimeout(r, 2000)) // start scan done, producer connected
  const session = new Session()
  session.connect()
  if (HEAP) {
    await session.post('HeapProfiler.enable')
    // Every 4 KiB allocated on average, objects collected since included: the garbage is the point.
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
  } else if (PROFILE) {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
  }
  const cg = createCgroup('bench-collector-profile')
  const cpu0 = process.cpuUsage()
  const threads0 = threadCpuSeconds()
  const t0 = performance.now()
  // How long the event loop went without a turn: the publisher's sends and their
  // acknowledgements need turns, so a starved loop shows up as a queue that only grows.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  const recordsBefore = collector.capture.stats().perFamily[FAMILY].records
  const droppedBefore = collector.capture.stats().perFamily[FAMILY].dropped
  try {
    const r = await cg.run(
      EXEC_STORM
        ? ['/bin/sh', '-c', `i=0; while [ $i -lt ${STORM} ]; do /bin/true; i=$((i+1)); done`]
        : ['perl', '-e', `getppid() for 1..${STORM};`],
    )
    if (r.code !== 0) throw new Error(r.stderr)
  } finally {
    await cg.remove()
  }
  loopDelay.disable()
  const stormSeconds = (performance.now() - t0) / 1000
  const publishedDuringStorm = publisher.stats().publishedEvents
  // Until the broker acknowledged what the storm made (nothing queued, no growth for 300 ms):
  // the figures end there, before stopping the collector (detaching and freeing the BPF
  // objects takes ~0.25 s of CPU that no event causes).
  for (let last = -1, still = 0, until = Date.now() + 10_000; Date.now() < until; ) {
    const s = publisher.stats()
    still = s.queuedEvents === 0 && s.publishedEvents === last ? still + 1 : 0
    if (still >= 3) break
    last = s.publishedEvents
    await new Promise((r) => setTimeout(r, 100))
  }
  const cpu = process.cpuUsage(cpu0)
  const threads = threadCpuSince(threads0)
  const heap = HEAP
    ? ((await session.post('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } }).profile
    : undefined
  const { profile } =
    PROFILE && !HEAP
      ? ((await session.post('Profiler.stop')) as {
          profile: { nodes: ProfileNode[]; samples: number[] }
        })
      : { profile: { nodes: [] as ProfileNode[], samples: [] } }
  session.disconnect()
  await collector.stop()
  const stats = await publisher.close()
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  const self = new Map<string, number>()
  let total = 0
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0
    total += hits
    const f = n.callFrame
    const where = f.url
      ? `${f.url.replace(/^.*\/(node_modules|services)\//, '')}:${f.lineNumber + 1}`
      : ''
    const key = `${f.functionName || '(anonymous)'} ${where}`
    self.set(key, (self.get(key) ?? 0) + hits)
  }
  if (heap) {
    const walk = (n: HeapNode) => {
      const f = n.callFrame
      const where = f.url
        ? `${f.url.replace(/^.*\/(node_modules|services)\//, '')}:${f.lineNumber + 1}`
        : ''
      const key = `${f.functionName || '(anonymous)'} ${where}`
      self.set(key, (self.get(key) ?? 0) + n.selfSize)
      total += n.selfSize
      for (const c of n.children) walk(c)
    }
    walk(heap.head)
  }
  const top = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 40)
    .map(([fn, hits]) => `${((hits / total) * 100).toFixed(1).padStart(5)} %  ${fn}`)
  const reports = join(import.meta.dirname, '../reports')
  mkdirSync(reports, { recursive: true })
  if (PROFILE) writeFileSync(join(reports, 'collector-profile.cpuprofile'), JSON.stringify(profile))
  const captured = collector.capture.stats().perFamily[FAMILY].records - recordsBefore
  const kernelDropped = collector.capture.stats().perFamily[FAMILY].dropped - droppedBefore
  const perEventUs = (seconds: number) => Math.round((seconds / stats.publishedEvents) * 1e7) / 10
  const sumThreads = (match: (name: string) => boolean) =>
    Object.entries(threads)
      .filter(([name]) => match(name))
      .reduce((n, [, s]) => n + s, 0)
  process.stdout.write(
    `${JSON.stringify({
      storm: STORM,
      stormKind: EXEC_STORM ? 'exec' : 'getppid',
      raw: RAW,
      loadAverage: loadavg().map((l) => Math.round(l * 10) / 10),
      compression: config.kafkaCompression,
      queueBudgetBytes: config.queueBudgetBytes,
      // Records of the storm's family (syscall, or exec: forks, execs and exits).
      capturedRecords: captured,
      kernelDropped,
      publishedEvents: stats.publishedEvents,
      // Left in the queue when close() gave up waiting, and dropped past the queue budget.
      unpublishedEvents: stats.queuedEvents,
      publisherDropped: stats.droppedEvents[FAMILY],
      // On the broker, record batch headers included, of the storm family's topic (it also
      // holds the few drop records, none in a run without drops).
      [`${FAMILY}BytesPerEvent`]:
        Math.round((topicBytes(join(dir, 'data'), TOPICS[FAMILY]) / captured) * 100) / 100,
      // While the storm ran: what the broker acknowledged, the longest the event loop waited.
      stormSeconds,
      publishedDuringStorm,
      eventLoopDelayMaxMs: Math.round(loopDelay.max / 1e5) / 10,
      cpuSeconds,
      wallSeconds: (performance.now() - t0) / 1000,
      publishedPerCpuSecond: stats.publishedEvents / cpuSeconds,
      threadCpuSeconds: threads,
      ...(heap
        ? { sampledBytesPerEvent: Math.round((total / stats.publishedEvents) * 10) / 10 }
        : {}),
      usPerEvent: {
        mainThread: perEventUs(threads.MainThread ?? 0),
        v8Workers: perEventUs(sumThreads((n) => n.startsWith('V8'))),
        libuvPool: perEventUs(sumThreads((n) => n.startsWith('libuv'))),
        total: perEventUs(cpuSeconds),
      },
    })}\n${top.join('\n')}\n`,
  )
} finally {
  spawnSync(kafkaSh, ['stop', '--dir', dir], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
