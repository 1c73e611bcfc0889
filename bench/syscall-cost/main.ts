// bench/syscall-cost: what counting every system call costs per call, beside the cheapest
// possible program on the same hook. A getppid storm (EBBFLOW_BENCH_GETPPIDS calls of perl's
// getppid in a child cgroup) runs untraced and under one program at a time:
//   - empty: a tp_btf/sys_enter program that returns at once (the reference);
//   - slot: the shipped syscall.bpf.o with the storm's cgroup given a slot, as the collector
//     does for a busy cgroup (the fast path);
//   - hash: the same object with no slot for the cgroup (the fallback path: the per-CPU hash,
//     the design shipped before slots, plus the cached "no slot" check).
//   - task_only, chase, helper: parts of the shipped program (components.bpf.c), to show where
//     its cost above empty lies.
//   - slot_before: with EBBFLOW_BENCH_BEFORE=<git revision>, the slot path of syscall.bpf.c as it
//     was at that revision (compiled from git), to compare a change side by side.
// Rounds alternate untraced, empty, slot, hash, task_only, chase, helper (EBBFLOW_BENCH_ROUNDS, default 5), medians.
// Two measures: wall time of the storm (added ns per call against untraced) and bpf_stats
// (run_time_ns / run_cnt of the program, from bpftool, while kernel.bpf_stats_enabled is 1;
// the sysctl is restored afterwards). Also checks that the slot counted exactly the storm's
// getppid calls. Prints one JSON report and writes it to bench/reports/syscall-cost.json.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { syscallNumber } from '@ebbflow/common'
import { BpfObject, probeFeatures } from '@ebbflow/native'
import { type BpftoolProg, bpftoolProgs, enableBpfStats } from '../../tests/support/bpf-stats.ts'
import { createCgroup } from '../../tests/support/cgroup.ts'

const ROUNDS = Number(process.env.EBBFLOW_BENCH_ROUNDS ?? 5)
const GETPPIDS = Number(process.env.EBBFLOW_BENCH_GETPPIDS ?? 3_000_000)
const root = join(import.meta.dirname, '../..')
const SLOT = 7

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const BEFORE = process.env.EBBFLOW_BENCH_BEFORE

function compile(dir: string, name: 'empty' | 'components' | 'before'): string {
  const out = join(dir, `${name}.bpf.o`)
  let source = join(import.meta.dirname, `${name}.bpf.c`)
  if (name === 'before') {
    source = join(dir, 'syscall-before.bpf.c')
    const text = execFileSync('git', ['show', `${BEFORE}:bpf/src/syscall.bpf.c`], { cwd: root })
    writeFileSync(source, text)
  }
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86'
  execFileSync('clang', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    `-D__TARGET_ARCH_${arch}`,
    `-I${join(root, 'bpf/build')}`,
    `-I${join(root, 'bpf/include')}`,
    '-c',
    source,
    '-o',
    out,
  ])
  return out
}

interface ProgStats {
  runTimeNs: number
  runCnt: number
}

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

const PARTS = ['task_only', 'chase', 'helper'] as const
type Part = (typeof PARTS)[number]
type Variant = 'empty' | 'slot' | 'slot_before' | 'hash' | Part
const VARIANTS: Variant[] = [
  'empty',
  'slot',
  ...(BEFORE ? (['slot_before'] as const) : []),
  'hash',
  ...PARTS,
]
const isPart = (v: Variant): v is Part => (PARTS as readonly string[]).includes(v)
const progName = (v: Variant) =>
  v === 'empty' ? 'empty_sys_enter' : isPart(v) ? v : 'handle_sys_enter'
function load(
  variant: Variant,
  paths: { empty: string; components: string; before: string | undefined },
) {
  if (variant === 'empty' || isPart(variant)) {
    const object = BpfObject.open(variant === 'empty' ? paths.empty : paths.components)
    if (variant !== 'empty') {
      // One program of the object at a time: the others would add their own cost per call.
      for (const other of PARTS) if (other !== variant) object.setAutoload(other, false)
      object.setGlobal('self_tgid', u32(process.pid))
    }
    return { object, id: loadedProgId(progName(variant), () => object.load()) }
  }
  const before = variant === 'slot_before'
  const object = BpfObject.open(before ? paths.before! : join(root, 'bpf/build/syscall.bpf.o'))
  object.setGlobal('self_tgid', u32(process.pid))
  const id = loadedProgId('handle_sys_enter', () => object.load())
  if (variant !== 'hash') {
    // Revisions before the generation-in-cache change guarded slots with an owner array.
    if (object.maps().some((m) => m.name === 'syscall_slot_owner'))
      object.mapUpdate('syscall_slot_owner', u32(SLOT), u64(cg.id))
    object.mapUpdate('syscall_cgroup_slots', u64(cg.id), u32(SLOT))
    // Revisions before the generation became a global kept it in an array map.
    const generation = object.maps().some((m) => m.name === 'syscall_slot_generation')
      ? 'syscall_slot_generation'
      : '.data.slot_gen'
    object.mapUpdate(generation, u32(0), u64(1))
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

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-syscall-cost-'))
const wall = Object.fromEntries(
  ['untraced', ...VARIANTS].map((v) => [v, [] as number[]]),
) as Record<'untraced' | Variant, number[]>
const perRun = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<
  Variant,
  number[]
>
const slotCounted: number[] = []
const slotBeforeCounted: number[] = []
let restoreBpfStats: (() => void) | undefined
try {
  const paths = {
    empty: compile(dir, 'empty'),
    components: compile(dir, 'components'),
    before: BEFORE ? compile(dir, 'before') : undefined,
  }
  restoreBpfStats = enableBpfStats()
  await timed() // warm caches
  for (let i = 0; i < ROUNDS; i++) {
    wall.untraced.push(await timed())
    for (const variant of VARIANTS) {
      const { object, id } = load(variant, paths)
      try {
        object.attach(progName(variant))
        const before = progStats(id)
        wall[variant].push(await timed())
        const after = progStats(id)
        perRun[variant].push((after.runTimeNs - before.runTimeNs) / (after.runCnt - before.runCnt))
        if (variant === 'slot') slotCounted.push(slotCount(object))
        if (variant === 'slot_before') slotBeforeCounted.push(slotCount(object))
      } finally {
        await object.close()
      }
    }
  }
} finally {
  restoreBpfStats?.()
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
  bpfStatsNsPerRun: Object.fromEntries(VARIANTS.map((v) => [v, median(perRun[v])])),
  wallSeconds: { untraced: u, ...Object.fromEntries(VARIANTS.map((v) => [v, median(wall[v])])) },
  wallAddedNsPerCall: Object.fromEntries(VARIANTS.map((v) => [v, addedNs(v)])),
  // The parts of the shipped program (components.bpf.c), each against the empty program.
  partsRatioToEmpty: Object.fromEntries(
    PARTS.map((v) => [v, median(perRun[v]) / median(perRun.empty)]),
  ),
  ratioToEmpty: {
    bpfStats: median(perRun.slot) / median(perRun.empty),
    wall: addedNs('slot') / addedNs('empty'),
  },
  target: { ratioToEmpty: 1.5 },
  // The workload's own count: every getppid of the storm lands in the slot (perl's startup
  // calls getppid too, so the count may exceed it by a few, never fall short).
  slotCountedGetppids: slotCounted,
  ...(BEFORE && {
    before: {
      revision: BEFORE,
      ratioToEmpty: median(perRun.slot_before) / median(perRun.empty),
      // Per round, shipped minus this revision (bpf_stats ns): the rounds share their load.
      pairedDiffNs: median(perRun.slot.map((ns, i) => ns - perRun.slot_before[i]!)),
      slotCountedGetppids: slotBeforeCounted,
    },
  }),
  raw: { wall, perRun },
}
const text = `${JSON.stringify(report, null, 2)}\n`
const reports = join(import.meta.dirname, '../reports')
mkdirSync(reports, { recursive: true })
writeFileSync(join(reports, 'syscall-cost.json'), text)
process.stdout.write(text)
