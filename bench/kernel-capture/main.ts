// bench/kernel-capture: what the kernel side costs and how much it delivers.
//   - exec storm and getppid storm: wall time untraced vs traced (all families attached, as
//     `ebbflow collect` runs), median of alternating rounds -> slowdown ratio;
//   - delivery: every getppid as a record, decoded in JavaScript -> events/s per core of the
//     JavaScript thread, and drops;
//   - sustained: a rate-limited producer at EBBFLOW_BENCH_RATE records/s (default 200,000) for
//     EBBFLOW_BENCH_SECONDS (default 60) -> drops and the collector's peak RSS.
// Prints one JSON report on stdout and writes it to bench/reports/kernel-capture.json.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { type CaptureSink, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import type { CapturedEvent, CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { createLogger } from '@ebbflow/common'
import { probeFeatures } from '@ebbflow/native'
import { createCgroup } from '../../tests/support/cgroup.ts'

const env = process.env
const ROUNDS = Number(env.EBBFLOW_BENCH_ROUNDS ?? 3)
const EXECS = Number(env.EBBFLOW_BENCH_EXECS ?? 3000)
const GETPPIDS = Number(env.EBBFLOW_BENCH_GETPPIDS ?? 5_000_000)
const DELIVERY_RECORDS = Number(env.EBBFLOW_BENCH_DELIVERY ?? 3_000_000)
const RATE = Number(env.EBBFLOW_BENCH_RATE ?? 200_000)
const SECONDS = Number(env.EBBFLOW_BENCH_SECONDS ?? 60)

class CountingSink implements CaptureSink {
  received = 0
  drops = 0
  records(events: RecordEvent[], _family: Family): void {
    this.received += events.length
  }
  counters(events: CounterEvent[]): void {
    for (const e of events as CapturedEvent[]) if (e.kind === 'drops') this.drops += e.count
  }
}

function start(input: Record<string, string>, sink: CaptureSink): KernelCapture {
  const config = loadCollectorConfig({ counterIntervalMs: '1000', ...input }, {})
  return KernelCapture.start(config, sink, createLogger('bench', 'warn'))
}

async function timed(run: () => Promise<{ code: number | null; stderr: string }>): Promise<number> {
  const t0 = process.hrtime.bigint()
  const r = await run()
  if (r.code !== 0) throw new Error(`workload failed: ${r.stderr}`)
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function slowdown(name: string, argv: string[]) {
  const cg = createCgroup(`bench-${name}`)
  const untraced: number[] = []
  const traced: number[] = []
  try {
    await timed(() => cg.run(argv)) // warm caches
    for (let i = 0; i < ROUNDS; i++) {
      untraced.push(await timed(() => cg.run(argv)))
      const sink = new CountingSink()
      const capture = start({}, sink)
      traced.push(await timed(() => cg.run(argv)))
      await capture.stop()
    }
  } finally {
    await cg.remove()
  }
  const u = median(untraced)
  const t = median(traced)
  return {
    untracedSeconds: u,
    tracedSeconds: t,
    slowdownRatio: t / u,
    slowdownPercent: (t / u - 1) * 100,
    rounds: ROUNDS,
  }
}

async function delivery() {
  const cg = createCgroup('bench-delivery')
  const sink = new CountingSink()
  const capture = start(
    { families: 'syscall', securitySyscalls: 'getppid', ringBufferBytes: String(64 * 1024 * 1024) },
    sink,
  )
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  try {
    const seconds = await timed(() =>
      cg.run(['perl', '-e', `getppid() for 1..${DELIVERY_RECORDS}`]),
    )
    capture.pollCounters()
    await capture.stop()
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = process.cpuUsage(cpu0)
    const stats = capture.stats()
    return {
      produced: DELIVERY_RECORDS,
      delivered: stats.records,
      dropped: stats.dropped,
      producerSeconds: seconds,
      deliveredPerSecondWall: stats.records / wall,
      decodeSeconds: stats.decodeNs / 1e9,
      decodedPerSecondOneCore: stats.records / (stats.decodeNs / 1e9),
      processCpuSeconds: (cpu.user + cpu.system) / 1e6,
    }
  } finally {
    await cg.remove()
  }
}

async function sustained() {
  const cg = createCgroup('bench-sustained')
  const sink = new CountingSink()
  const capture = start({ families: 'exec,net,syscall', securitySyscalls: 'getppid' }, sink)
  let peakRss = 0
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
  }, 250)
  const producer = `use Time::HiRes qw(time sleep); my ($r, $d) = (${RATE}, ${SECONDS}); my $t0 = time; my $n = 0;
    while ((my $e = time - $t0) < $d) { my $target = $e * $r; while ($n < $target) { getppid(); $n++ } sleep(0.0005) }
    print "$n\\n";`
  try {
    const result = await cg.run(['perl', '-e', producer])
    if (result.code !== 0) throw new Error(result.stderr)
    const produced = Number(result.stdout.trim())
    await new Promise((r) => setTimeout(r, 300))
    capture.pollCounters()
    await capture.stop()
    clearInterval(sampler)
    const stats = capture.stats()
    return {
      targetPerSecond: RATE,
      seconds: SECONDS,
      produced,
      delivered: stats.perFamily.syscall.records,
      dropped: stats.dropped,
      peakRssMiB: peakRss / 2 ** 20,
    }
  } finally {
    clearInterval(sampler)
    await cg.remove()
  }
}

// The sustained phase runs in a fresh process, so its peak RSS is the collector's own and not
// what the earlier phases left in this one.
if (process.argv[2] === '--sustained') {
  process.stdout.write(JSON.stringify(await sustained()))
  process.exit(0)
}

function sustainedInFreshProcess() {
  const r = spawnSync(process.execPath, [import.meta.filename, '--sustained'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) throw new Error(`sustained phase failed (exit ${r.status})`)
  return JSON.parse(r.stdout) as Awaited<ReturnType<typeof sustained>>
}

const features = probeFeatures()
const report = {
  bench: 'kernel-capture',
  machine: {
    kernel: features.kernelRelease,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: totalmem() / 2 ** 30,
    node: process.version,
  },
  execStorm: {
    execs: EXECS,
    ...(await slowdown('exec', [
      '/bin/sh',
      '-c',
      `i=0; while [ $i -lt ${EXECS} ]; do /bin/true; i=$((i+1)); done`,
    ])),
  },
  getppidStorm: {
    calls: GETPPIDS,
    ...(await slowdown('getppid', ['perl', '-e', `getppid() for 1..${GETPPIDS}`])),
  },
  delivery: await delivery(),
  sustained: sustainedInFreshProcess(),
  targets: {
    decodedPerSecondOneCore: 1_000_000,
    sustainedDrops: 0,
    execStormSlowdownPercent: 2,
    getppidStormSlowdownPercent: 10,
    peakRssMiB: 128,
  },
}
const text = `${JSON.stringify(report, null, 2)}\n`
const dir = join(import.meta.dirname, '../reports')
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'kernel-capture.json'), text)
process.stdout.write(text)
