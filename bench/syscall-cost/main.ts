// bench/syscall-cost: what counting every system call costs per call, beside the cheapest
// possible program on the same hook. A getppid storm (EBBFLOW_BENCH_GETPPIDS calls of perl's
// getppid in a child cgroup) runs untraced and under one program at a time:
//   - empty: a tp_btf/sys_enter program that returns at once (the reference);
//   - slot: the shipped syscall.bpf.o with the storm's cgroup given a slot, as the collector
//     does for a busy cgroup (the fast path);
//   - hash: the same object with no slot for the cgroup (the fallback path: the per-CPU hash,
//     the design shipped before slots, plus the cached "no slot" check).
// Rounds alternate untraced, empty, slot, hash (EBBFLOW_BENCH_ROUNDS, default 5), medians.
// Two measures: wall time of the storm (added ns per call against untraced) and bpf_stats
// (run_time_ns / run_cnt of the program, from bpftool, while kernel.bpf_stats_enabled is 1;
// the sysctl is restored afterwards). Also checks that the slot counted exactly the storm's
// getppid calls. Prints one JSON report and writes it to bench/reports/syscall-cost.json.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { syscallNumber } from '@ebbflow/common'
import { BpfObject, probeFeatures } from '@ebbflow/native'
import { createCgroup } from '../../tests/support/cgroup.ts'

const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 5)
const GETPPIDS = Number(process.env.EBBFLOW_BENCH_GETPPIDS ?? 3_000_000)
const root = join(import.meta.dirname, '../..')
const STATS = '/proc/sys/kernel/bpf_stats_enabled'
const SLOT = 7

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function compileEmpty(dir: string): string {
  const out = join(dir, 'empty.bpf.o')
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86'
  execFileSync('clang', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    `-D__TARGET_ARCH_${arch}`,
    `-I${join(root, 'bpf/build')}`,
    '-c',
    join(import.meta.dirname, 'empty.bpf.c'),
    '-o',
    out,
  ])
  return out
}

interface ProgStats {
  runTimeNs: number
  runCnt: number
}
type BpftoolProg = { id: number; name: string; run_time_ns?: number; run_cnt?: number }
const bpftoolProgs = (): BpftoolProg[] =>
  JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }))

/**
 * The id of the program named `name` (the kernel keeps its first 15 bytes) that `load` adds:
 * other programs of the same name (other collectors on this machine) were there before it.
 */
function loadedProgId(name: string, load: () => void): number {
  const before = new Set(bpftoolProgs().map((p) => p.id))
  load()
  const added = bpftoolProgs().filter((p) => !before.has(p.id) && name.startsWith(p.name))
  if (added.length !== 1) throw new Error(`expected one new program ${name}, found ${added.length}`)
  return added[0]!.id
}

function progStats(id: number): ProgStats {
  const p = JSON.parse(
    execFileSync('bpftool', ['prog', 'show', 'id', String(id), '--json'], { encoding: 'utf8' }),
  ) as BpftoolProg
  return { runTimeNs: Number(p.run_time_ns ?? 0), runCnt: Number(p.run_cnt ?? 0) }
}

const cg = createCgroup('bench-syscall-cost')
const storm = ['perl', '-e', `getppid() for 1..${GETPPIDS}`]
async function timed(): Promise<number> {
  const t0 = process.hrtime.bigint()
  const r = await cg.run(storm)
  if (r.code !== 0) throw new Error(`workload failed: ${r.stderr}`)
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(n))
  return b
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

type Variant = 'empty' | 'slot' | 'hash'
function load(variant: Variant, emptyPath: string): { object: BpfObject; id: number } {
  if (variant === 'empty') {
    const object = BpfObject.open(emptyPath)
    return { object, id: loadedProgId('empty_sys_enter', () => object.load()) }
  }
  const object = BpfObject.open(join(root, 'bpf/build/syscall.bpf.o'))
  object.setGlobal('self_tgid', u32(process.pid))
  const id = loadedProgId('handle_sys_enter', () => object.load())
  if (variant === 'slot') {
    object.mapUpdate('syscall_slot_owner', u32(SLOT), u64(cg.id))
    object.mapUpdate('syscall_cgroup_slots', u64(cg.id), u32(SLOT))
    object.mapUpdate('syscall_slot_generation', u32(0), u64(1))
  }
  return { object, id }
}

/** Calls to getppid the slot counted (summed over CPUs). */
function slotCount(object: BpfObject): number {
  const value = object.mapLookup('syscall_slot_counts', u32(SLOT))
  if (!value) return 0
  const nr = syscallNumber('getppid')!
  const perCpu = 8 * 512
  let total = 0
  for (let at = 0; at + perCpu <= value.length; at += perCpu)
    total += Number(value.readBigUInt64LE(at + nr * 8))
  return total
}

const statsBefore = readFileSync(STATS, 'utf8').trim()
const dir = mkdtempSync(join(tmpdir(), 'ebbflow-syscall-cost-'))
const wall: Record<'untraced' | Variant, number[]> = { untraced: [], empty: [], slot: [], hash: [] }
const perRun: Record<Variant, number[]> = { empty: [], slot: [], hash: [] }
const slotCounted: number[] = []
try {
  const emptyPath = compileEmpty(dir)
  writeFileSync(STATS, '1')
  await timed() // warm caches
  for (let i = 0; i < ROUNDS; i++) {
    wall.untraced.push(await timed())
    for (const variant of ['empty', 'slot', 'hash'] as const) {
      const { object, id } = load(variant, emptyPath)
      try {
        object.attach(variant === 'empty' ? 'empty_sys_enter' : 'handle_sys_enter')
        const before = progStats(id)
        wall[variant].push(await timed())
        const after = progStats(id)
        perRun[variant].push((after.runTimeNs - before.runTimeNs) / (after.runCnt - before.runCnt))
        if (variant === 'slot') slotCounted.push(slotCount(object))
      } finally {
        await object.close()
      }
    }
  }
} finally {
  writeFileSync(STATS, statsBefore)
  rmSync(dir, { recursive: true, force: true })
  await cg.remove()
}

const u = median(wall.untraced)
const addedNs = (v: Variant) => ((median(wall[v]) - u) / GETPPIDS) * 1e9
const report = {
  bench: 'syscall-cost',
  machine: { kernel: probeFeatures().kernelRelease, cpus: cpus().length, node: process.version },
  getppids: GETPPIDS,
  rounds: ROUNDS,
  bpfStatsNsPerRun: {
    empty: median(perRun.empty),
    slot: median(perRun.slot),
    hash: median(perRun.hash),
  },
  wallSeconds: {
    untraced: u,
    empty: median(wall.empty),
    slot: median(wall.slot),
    hash: median(wall.hash),
  },
  wallAddedNsPerCall: { empty: addedNs('empty'), slot: addedNs('slot'), hash: addedNs('hash') },
  ratioToEmpty: {
    bpfStats: median(perRun.slot) / median(perRun.empty),
    wall: addedNs('slot') / addedNs('empty'),
  },
  target: { ratioToEmpty: 1.5 },
  // The workload's own count: every getppid of the storm lands in the slot (perl's startup
  // calls getppid too, so the count may exceed it by a few, never fall short).
  slotCountedGetppids: slotCounted,
  raw: { wall, perRun },
}
const text = `${JSON.stringify(report, null, 2)}\n`
const reports = join(import.meta.dirname, '../reports')
mkdirSync(reports, { recursive: true })
writeFileSync(join(reports, 'syscall-cost.json'), text)
process.stdout.write(text)
