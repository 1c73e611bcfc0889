// bench/exec-overhead/kernel.ts: the kernel side of the exec storm, per BPF program, for two
// builds of the BPF objects side by side. Each round starts `ebbflow collect --families exec
// --output json` (output discarded) on one build, then the other (A B A B …), turns on the
// kernel's BPF run-time statistics (kernel.bpf_stats_enabled), runs the storm
// (EBBFLOW_BENCH_EXECS × /bin/true from sh) and reads each program's run count and run time
// (bpftool) before and after it. The figure is ns per run of each program, medians of the
// rounds; the statistics add a few ns per run of their own, the same for both builds.
//
//   EBBFLOW_BENCH_BPF_BEFORE=DIR  the A build (a bpf/build of the code before a change)
//   EBBFLOW_BENCH_BPF_AFTER=DIR   the B build (default: this checkout's bpf/build)
//   EBBFLOW_BENCH_ROUNDS          rounds (default 5)   EBBFLOW_BENCH_EXECS  execs (default 3000)
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { bpftoolProgs, enableBpfStats } from '../../tests/support/bpf-stats.ts'
import { type CollectProcess, startCollect } from '../../tests/support/collect-process.ts'

const repo = join(import.meta.dirname, '../..')
const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 5)
const EXECS = Number(process.env.EBBFLOW_BENCH_EXECS ?? 3000)
const BUILDS: Record<string, string | undefined> = {
  before: process.env.EBBFLOW_BENCH_BPF_BEFORE,
  after: process.env.EBBFLOW_BENCH_BPF_AFTER ?? join(repo, 'bpf/build'),
}
const PROGRAMS = [
  'handle_sched_process_exec',
  'handle_sched_process_exit',
  'handle_sched_process_fork',
]
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

if (process.getuid?.() !== 0) {
  process.stdout.write(
    `${JSON.stringify({ bench: 'exec-kernel', skipped: 'needs root (BPF, bpf_stats)' })}\n`,
  )
  process.exit(0)
}

/** Run count and run time of each of our programs now. */
function stats(): Map<string, { cnt: number; ns: number }> {
  const out = new Map<string, { cnt: number; ns: number }>()
  for (const p of bpftoolProgs())
    if (PROGRAMS.includes(p.name)) {
      const s = out.get(p.name) ?? { cnt: 0, ns: 0 }
      out.set(p.name, { cnt: s.cnt + (p.run_cnt ?? 0), ns: s.ns + (p.run_time_ns ?? 0) })
    }
  return out
}

async function collector(bpfDir: string): Promise<CollectProcess> {
  const c = await startCollect(
    process.execPath,
    [join(repo, 'services/cli/src/main.ts'), 'collect', '--families', 'exec', '--output', 'json'],
    { env: { EBBFLOW_BPF_DIR: bpfDir }, stdout: 'ignore' },
  )
  await new Promise((r) => setTimeout(r, 1000))
  return c
}

const perRun: Record<string, Record<string, number[]>> = {}
const runs: Record<string, number[]> = {}
const restoreBpfStats = enableBpfStats()
try {
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, dir] of Object.entries(BUILDS)) {
      if (!dir) continue
      const child = await collector(dir)
      try {
        const s0 = stats()
        execFileSync('/bin/sh', [
          '-c',
          `i=0; while [ $i -lt ${EXECS} ]; do /bin/true; i=$((i+1)); done`,
        ])
        const s1 = stats()
        for (const p of PROGRAMS) {
          const a = s0.get(p)
          const b = s1.get(p)
          if (!a || !b) throw new Error(`${name}: program ${p} not loaded`)
          const cnt = b.cnt - a.cnt
          const byProg = perRun[name] ?? {}
          perRun[name] = byProg
          byProg[p] = [...(byProg[p] ?? []), (b.ns - a.ns) / cnt]
          if (p === PROGRAMS[0]) runs[name] = [...(runs[name] ?? []), cnt]
        }
      } finally {
        await child.stop()
      }
    }
} finally {
  restoreBpfStats()
}

const report = {
  bench: 'exec-kernel',
  execs: EXECS,
  rounds: ROUNDS,
  loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  execRunsMedian: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])),
  nsPerRunMedian: Object.fromEntries(
    Object.entries(perRun).map(([build, byProg]) => [
      build,
      Object.fromEntries(Object.entries(byProg).map(([p, v]) => [p, Math.round(median(v))])),
    ]),
  ),
  nsPerExecMedian: Object.fromEntries(
    Object.entries(perRun).map(([build, byProg]) => [
      build,
      Math.round(Object.values(byProg).reduce((n, v) => n + median(v), 0)),
    ]),
  ),
  nsPerRun: perRun,
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
