// bench/wakeup: what batching ring buffer wake-ups saves. An exec storm (EBBFLOW_BENCH_EXECS
// × /bin/true in a child cgroup) untraced, traced with a wake-up per record
// (ringWakeupBytes 0, libbpf's default behaviour) and traced with the default batching, in
// alternating rounds (EBBFLOW_BENCH_ROUNDS, default 5) so machine drift hits all three alike;
// every family attached, as `ebbflow collect` runs. Also checks that batching delivers every
// exec (the workload's count, not the collector's). Prints one JSON report and writes it to
// bench/reports/wakeup.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { type CaptureSink, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import type { CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { createLogger } from '@ebbflow/common'
import { probeFeatures } from '@ebbflow/native'
import { createCgroup } from '../../tests/support/cgroup.ts'

const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 5)
const EXECS = Number(process.env.EBBFLOW_BENCH_EXECS ?? 3000)

class CountingSink implements CaptureSink {
  execs = 0
  drops = 0
  private readonly cgroupId: number
  constructor(cgroupId: number) {
    this.cgroupId = cgroupId
  }
  records(events: RecordEvent[], _family: Family): void {
    for (const e of events)
      if (e.kind === 'exec' && 'cgroupId' in e && e.cgroupId === this.cgroupId) this.execs++
  }
  counters(events: CounterEvent[]): void {
    for (const e of events) if (e.kind === 'drops') this.drops += e.count
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const cg = createCgroup('bench-wakeup')
const storm = ['/bin/sh', '-c', `i=0; while [ $i -lt ${EXECS} ]; do /bin/true; i=$((i+1)); done`]
async function timed(): Promise<number> {
  const t0 = process.hrtime.bigint()
  const r = await cg.run(storm)
  if (r.code !== 0) throw new Error(`workload failed: ${r.stderr}`)
  return Number(process.hrtime.bigint() - t0) / 1e9
}
async function traced(wakeupBytes: string | undefined) {
  const sink = new CountingSink(cg.id)
  const config = loadCollectorConfig(
    {
      counterIntervalMs: '1000',
      ...(wakeupBytes === undefined ? {} : { ringWakeupBytes: wakeupBytes }),
    },
    {},
  )
  const capture = KernelCapture.start(config, sink, createLogger('bench', 'warn'))
  const seconds = await timed()
  await capture.stop()
  return { seconds, execs: sink.execs, drops: sink.drops }
}

const rows = { untraced: [] as number[], wakeEach: [] as number[], batched: [] as number[] }
const delivered = { wakeEach: [] as number[], batched: [] as number[] }
try {
  await timed() // warm caches
  for (let i = 0; i < ROUNDS; i++) {
    rows.untraced.push(await timed())
    const a = await traced('0')
    rows.wakeEach.push(a.seconds)
    delivered.wakeEach.push(a.execs)
    const b = await traced(undefined)
    rows.batched.push(b.seconds)
    delivered.batched.push(b.execs)
  }
} finally {
  await cg.remove()
}
const u = median(rows.untraced)
const report = {
  bench: 'wakeup',
  machine: { kernel: probeFeatures().kernelRelease, cpus: cpus().length, node: process.version },
  execs: EXECS,
  rounds: ROUNDS,
  seconds: { untraced: u, wakeEach: median(rows.wakeEach), batched: median(rows.batched) },
  slowdownPercent: {
    wakeEach: (median(rows.wakeEach) / u - 1) * 100,
    batched: (median(rows.batched) / u - 1) * 100,
  },
  // Each storm is EXECS execs of /bin/true plus the shell's own: every one must arrive.
  execsDelivered: delivered,
  raw: rows,
}
const text = `${JSON.stringify(report, null, 2)}\n`
const dir = join(import.meta.dirname, '../reports')
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'wakeup.json'), text)
process.stdout.write(text)
