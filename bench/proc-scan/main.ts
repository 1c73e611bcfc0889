// bench/proc-scan: how long the collector's one read of /proc at start takes (it runs
// synchronously right after the attach, so captured events wait behind it): the machine as it
// is, then with EBBFLOW_BENCH_PROCS (default 1000) extra sleeping processes; median of
// EBBFLOW_BENCH_ROUNDS (default 5) reads each.
// Prints one JSON report on stdout and writes it to bench/reports/proc-scan.json.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { scanProcfs } from '@ebbflow/collector'
import { findCgroup2Mount } from '@ebbflow/common'
import { bootTimeNs } from '@ebbflow/native'

const env = process.env
const EXTRA = Number(env.EBBFLOW_BENCH_PROCS ?? 1000)
const ROUNDS = Number(env.EBBFLOW_BENCH_ROUNDS ?? 5)
const cgroupRoot = findCgroup2Mount()

function measure() {
  const ms: number[] = []
  const cpu: number[] = []
  let processes = 0
  for (let i = 0; i < ROUNDS; i++) {
    const before = process.cpuUsage()
    const scan = scanProcfs({
      cgroupRoot,
      argsMax: 1024,
      maxProcesses: 1_000_000,
      selfPid: process.pid,
      now: bootTimeNs,
    })
    ms.push(scan.stats.durationMs)
    const used = process.cpuUsage(before)
    cpu.push((used.user + used.system) / 1000)
    processes = scan.stats.processes
  }
  ms.sort((a, b) => a - b)
  cpu.sort((a, b) => a - b)
  const median = ms[Math.floor(ms.length / 2)]!
  return {
    processes,
    medianMs: Number(median.toFixed(1)),
    minMs: Number(ms[0]!.toFixed(1)),
    maxMs: Number(ms.at(-1)!.toFixed(1)),
    // On a loaded machine wall time is mostly waiting for a core; this is the read's own cost.
    medianCpuMs: Number(cpu[Math.floor(cpu.length / 2)]!.toFixed(1)),
    usPerProcess: Number(((median * 1000) / Math.max(processes, 1)).toFixed(1)),
  }
}

const asIs = measure()
const sleepers: ChildProcess[] = []
let withExtra: ReturnType<typeof measure>
try {
  // Each spawn has exec'd by the time it returns: the reads see them all.
  for (let i = 0; i < EXTRA; i++) sleepers.push(spawn('/bin/sleep', ['600'], { stdio: 'ignore' }))
  withExtra = measure()
} finally {
  for (const s of sleepers) s.kill('SIGKILL')
}
const report = {
  bench: 'proc-scan',
  cpus: cpus().length,
  loadAverage1m: loadavg()[0],
  asIs,
  [`plus${EXTRA}`]: withExtra,
}
const text = `${JSON.stringify(report, null, 2)}\n`
process.stdout.write(text)
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/proc-scan.json'), text)
