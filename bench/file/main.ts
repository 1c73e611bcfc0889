// bench/file: what the file family costs an open storm, and what reaches JavaScript.
//   - one process opens and closes one file EBBFLOW_BENCH_OPENS times (default 1,000,000) in
//     a test cgroup, three ways in one run, alternated round by round (A B C A B C ..., median
//     of EBBFLOW_BENCH_ROUNDS, default 3): nothing attached; an empty program on the same hook
//     (tp/syscalls/sys_exit_openat, the cost of the hook itself); the file family as the
//     collector runs it;
//   - records that reached JavaScript during the family's storms (after in-kernel dedup) and
//     their rate, and the repeats the kernel counted instead.
// The machine is shared and noisy: only figures of the same run compare.
// Prints one JSON report on stdout and writes it to bench/reports/file.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
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
const BPF_DIR = join(import.meta.dirname, '../../bpf/build')

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
const storm = openStormBinary()
const cg = createCgroup('bench-file')
const logger = createLogger('bench', 'warn')

async function timed(): Promise<number> {
  const t0 = process.hrtime.bigint()
  const r = await cg.run([storm, target, String(OPENS)])
  if (r.code !== 0) throw new Error(`open storm failed: ${r.stderr}`)
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function emptyHook(): BpfObject {
  const o = BpfObject.open(join(BPF_DIR, 'file.bpf.o'))
  for (const p of o.programs()) if (p !== 'bench_empty_exit_openat') o.setAutoload(p, false)
  o.setMaxEntries('events', 4096)
  o.load()
  o.attach('bench_empty_exit_openat')
  return o
}

const none: number[] = []
const empty: number[] = []
const family: number[] = []
const sink = new CountingSink()
sink.cgroupId = cg.id
let familySeconds = 0
try {
  await timed() // warm caches
  for (let i = 0; i < ROUNDS; i++) {
    none.push(await timed())
    const o = emptyHook()
    empty.push(await timed())
    await o.close()
    const capture = KernelCapture.start(
      loadCollectorConfig({ families: 'file', counterIntervalMs: '1000' }, {}),
      sink,
      logger,
    )
    const t = await timed()
    family.push(t)
    familySeconds += t
    capture.pollCounters()
    await capture.stop()
  }
} finally {
  await cg.remove()
  rmSync(tmp, { recursive: true, force: true })
}

const base = median(none)
const hook = median(empty)
const fam = median(family)
const report = {
  bench: 'file',
  cpus: cpus().length,
  opensPerRound: OPENS,
  rounds: ROUNDS,
  seconds: { nothingAttached: base, emptyProgram: hook, fileFamily: fam },
  nsPerOpen: {
    nothingAttached: (base / OPENS) * 1e9,
    emptyProgram: (hook / OPENS) * 1e9,
    fileFamily: (fam / OPENS) * 1e9,
  },
  slowdown: {
    fileFamilyVsEmptyProgram: fam / hook,
    fileFamilyVsNothing: fam / base,
    emptyProgramVsNothing: hook / base,
  },
  delivered: {
    // The storm cgroup's records over every storm of the family: sightings (full records with a path) and repeat records
    // (counts the collector read from the dedup map), and the accesses those counts stand for.
    sightingRecords: sink.sightings,
    repeatRecords: sink.repeats,
    accessesCounted: sink.sightings + sink.repeatAccesses,
    opensMade: OPENS * ROUNDS,
    recordsPerSecond: (sink.sightings + sink.repeats) / familySeconds,
    opensPerRecord: (OPENS * ROUNDS) / Math.max(1, sink.sightings + sink.repeats),
    // Every process of the (shared) machine during those storms, the bench's included.
    machineRecordsPerSecond: sink.machineRecords / familySeconds,
  },
  rawSeconds: { nothingAttached: none, emptyProgram: empty, fileFamily: family },
}
const text = JSON.stringify(report, null, 2)
process.stdout.write(`${text}\n`)
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/file.json'), text)
