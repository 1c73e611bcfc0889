// bench/file: what the file family costs an open storm, and what reaches JavaScript.
//   Two storms, each three ways in one run, alternated round by round (A B C A B C ...,
//   median of EBBFLOW_BENCH_ROUNDS, default 3): nothing attached; an empty program on the same
//   hook (tp/syscalls/sys_exit_openat, the cost of the hook itself); the file family as the
//   collector runs it:
//   - one file: one process opens and closes one file EBBFLOW_BENCH_OPENS times (default
//     1,000,000): after the first open every one is a repeat (an LRU lookup and an add);
//   - distinct files: one process opens EBBFLOW_BENCH_DISTINCT different files (default
//     100,000, in a tmpfs folder), each once: every open is a new (cgroup, file, access), so a
//     path walk and a record (the LRU map holds 16,384: entries are evicted as it goes);
//   - per storm: wall seconds, CPU seconds of the storm's cgroup (the BPF programs run in the
//     storm's own task and are charged to it) and of this process (the capture's decoding);
//     the records that reached JavaScript (after in-kernel dedup) and their rate, the repeats
//     the kernel counted instead, and the records the kernel dropped.
// The machine is shared and noisy: only figures of the same run compare.
// Prints one JSON report on stdout and writes it to bench/reports/file.json.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CaptureSink, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import type { CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { createLogger } from '@ebbflow/common'
import { BpfObject } from '@ebbflow/native'
import { createCgroup } from '../../tests/support/cgroup.ts'
import { openStormBinary } from '../../tests/support/open-storm.ts'

const env = process.env
const ROUNDS = Number(env.EBBFLOW_BENCH_ROUNDS ?? 3)
const OPENS = Number(env.EBBFLOW_BENCH_OPENS ?? 1_000_000)
const DISTINCT = Number(env.EBBFLOW_BENCH_DISTINCT ?? 100_000)
const BPF_DIR = join(import.meta.dirname, '../../bpf/build')
/** tmpfs: creating and opening 100,000 files measures the hook, not a disk. */
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

/** Counts the storm cgroup's records; the rest of the machine's only as a total. */
class CountingSink implements CaptureSink {
  sightings = 0
  repeats = 0
  repeatAccesses = 0
  machineRecords = 0
  cgroupId = 0
  records(events: RecordEvent[], _family: Family): void {
    for (const e of events) {
      if (e.kind !== 'file') continue
      this.machineRecords++
      if (e.cgroupId !== this.cgroupId) continue
      if (e.repeat) {
        this.repeats++
        this.repeatAccesses += e.count
      } else this.sightings++
    }
  }
  counters(_events: CounterEvent[]): void {}
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const tmp = mkdtempSync(join(tmpdir(), 'ebbflow-bench-file-'))
const target = join(tmp, 'target.txt')
writeFileSync(target, 'x')
const many = mkdtempSync(join(SHM, 'ebbflow-bench-file-'))
for (let i = 0; i < DISTINCT; i++) writeFileSync(join(many, String(i)), '')
const storm = openStormBinary()
const cg = createCgroup('bench-file')
const logger = createLogger('bench', 'warn')
/** CPU seconds the storm's cgroup used so far (cpu.stat is there without the cpu controller). */
const cgroupCpu = () =>
  Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(cg.path, 'cpu.stat'), 'utf8'))![1]) / 1e6
const selfCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

type Way = 'nothingAttached' | 'emptyProgram' | 'fileFamily'
const WAYS: Way[] = ['nothingAttached', 'emptyProgram', 'fileFamily']
interface Storm {
  name: string
  argv: string[]
  opens: number
  wall: Record<Way, number[]>
  stormCpu: Record<Way, number[]>
  /** This process's CPU during the family's storms: ring buffer drain, decoding, the sink. */
  captureCpu: number[]
  sink: CountingSink
  familySeconds: number
  kernelDropped: number
}
const newStorm = (name: string, argv: string[], opens: number): Storm => {
  const sink = new CountingSink()
  sink.cgroupId = cg.id
  const ways = () => ({ nothingAttached: [], emptyProgram: [], fileFamily: [] })
  return {
    name,
    argv,
    opens,
    wall: ways(),
    stormCpu: ways(),
    captureCpu: [],
    sink,
    familySeconds: 0,
    kernelDropped: 0,
  }
}
const storms = [
  newStorm('oneFile', [storm, target, String(OPENS)], OPENS),
  newStorm('distinctFiles', [storm, many, String(DISTINCT), String(DISTINCT)], DISTINCT),
]

async function timed(s: Storm, way: Way): Promise<number> {
  const c0 = cgroupCpu()
  const t0 = process.hrtime.bigint()
  const r = await cg.run(s.argv)
  if (r.code !== 0) throw new Error(`open storm failed: ${r.stderr}`)
  const t = Number(process.hrtime.bigint() - t0) / 1e9
  s.wall[way].push(t)
  s.stormCpu[way].push(cgroupCpu() - c0)
  return t
}

function emptyHook(): BpfObject {
  const o = BpfObject.open(join(BPF_DIR, 'file.bpf.o'))
  for (const p of o.programs()) if (p !== 'bench_empty_exit_openat') o.setAutoload(p, false)
  o.setMaxEntries('events', 4096)
  o.load()
  o.attach('bench_empty_exit_openat')
  return o
}

const load: number[] = []
try {
  for (const s of storms) await cg.run(s.argv) // warm caches (dentries of the 100,000 files)
  for (let i = 0; i < ROUNDS; i++) {
    load.push(loadavg()[0]!)
    for (const s of storms) {
      await timed(s, 'nothingAttached')
      const o = emptyHook()
      await timed(s, 'emptyProgram')
      await o.close()
      // A fresh capture per storm: fresh maps, so every distinct file is new to the kernel.
      const capture = KernelCapture.start(
        loadCollectorConfig({ families: 'file', counterIntervalMs: '1000' }, {}),
        s.sink,
        logger,
      )
      const u0 = selfCpu()
      s.familySeconds += await timed(s, 'fileFamily')
      capture.pollCounters()
      await capture.stop()
      s.captureCpu.push(selfCpu() - u0)
      s.kernelDropped += capture.stats().perFamily.file.dropped
    }
  }
} finally {
  await cg.remove()
  rmSync(tmp, { recursive: true, force: true })
  rmSync(many, { recursive: true, force: true })
}

const perWay = (xs: Record<Way, number[]>) =>
  Object.fromEntries(WAYS.map((w) => [w, median(xs[w])])) as Record<Way, number>
function stormReport(s: Storm) {
  const wall = perWay(s.wall)
  const cpu = perWay(s.stormCpu)
  const records = s.sink.sightings + s.sink.repeats
  return {
    opensPerRound: s.opens,
    seconds: wall,
    nsPerOpen: Object.fromEntries(WAYS.map((w) => [w, (wall[w] / s.opens) * 1e9])),
    slowdown: {
      fileFamilyVsEmptyProgram: wall.fileFamily / wall.emptyProgram,
      fileFamilyVsNothing: wall.fileFamily / wall.nothingAttached,
      emptyProgramVsNothing: wall.emptyProgram / wall.nothingAttached,
    },
    // The storm's own CPU (its task runs the BPF programs): robust where wall time is not.
    stormCpuSeconds: cpu,
    cpuNsPerOpen: Object.fromEntries(WAYS.map((w) => [w, (cpu[w] / s.opens) * 1e9])),
    cpuSlowdown: {
      fileFamilyVsEmptyProgram: cpu.fileFamily / cpu.emptyProgram,
      fileFamilyVsNothing: cpu.fileFamily / cpu.nothingAttached,
    },
    captureCpuSeconds: median(s.captureCpu),
    delivered: {
      // The storm cgroup's records over every storm of the family: sightings (full records
      // with a path) and repeat records (counts the collector read from the dedup map), and
      // the accesses those counts stand for.
      sightingRecords: s.sink.sightings,
      repeatRecords: s.sink.repeats,
      accessesCounted: s.sink.sightings + s.sink.repeatAccesses,
      opensMade: s.opens * ROUNDS,
      recordsPerSecond: records / s.familySeconds,
      opensPerRecord: (s.opens * ROUNDS) / Math.max(1, records),
      // Records of the family the kernel could not hand over (ring buffer full, map full).
      kernelDropped: s.kernelDropped,
      // Every process of the (shared) machine during those storms, the bench's included.
      machineRecordsPerSecond: s.sink.machineRecords / s.familySeconds,
    },
    rawSeconds: s.wall,
    rawStormCpuSeconds: s.stormCpu,
  }
}
const report = {
  bench: 'file',
  cpus: cpus().length,
  rounds: ROUNDS,
  loadAverage1m: load,
  oneFile: stormReport(storms[0]!),
  distinctFiles: stormReport(storms[1]!),
}
const text = JSON.stringify(report, null, 2)
process.stdout.write(`${text}\n`)
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/file.json'), text)
