// Kernel capture: loads one BPF object per family through the native addon, drains its
// buffer into decoded batches, and reads the in-kernel counters on an interval.
// Stages after this one (enrichment, publishing) receive whole batches through CaptureSink.
import { join } from 'node:path'
import {
  type CounterEvent,
  DEFAULT_SECURITY_SYSCALLS,
  type DecodeErrors,
  type DecodeOptions,
  DROP_REASONS,
  type DropDelta,
  decodeBatch,
  type EventMeta,
  type Family,
  type FileEvent,
  findCgroup2Mount,
  KernelSupportError,
  LAYOUTS,
  LIMITS,
  type Logger,
  newDecodeErrors,
  type RawSyscallTaker,
  type RecordEvent,
  syscallName,
  syscallNumber,
} from '@ebbflow/common'
import { BpfObject, bootTimeNs, NativeError, probeFeatures } from '@ebbflow/native'
import { type CollectorConfig, ringBytesOf } from './config.ts'
import { DeltaTracker, type MapDump, syscallCountDeltas, trafficDeltas } from './counters.ts'
import { checkKernelSupport } from './kernel-support.ts'
import { checkCapturePrerequisites } from './privileges.ts'
import { mergeSyscallCounts, SyscallSlots } from './syscall-slots.ts'

/** Where decoded events go. Called on the JavaScript thread, one call per batch. */
export interface CaptureSink {
  records(events: RecordEvent[], family: Family): void
  counters(events: CounterEvent[]): void
  /**
   * Optional, asked once at start: takes syscall records from the ring's bytes, with no event
   * object (returning false has the record decoded and given to records() as usual). Stages in
   * front of enrichment pass the question on; enrichment answers it when the stage after it
   * has a rawSyscallWriter.
   */
  rawSyscalls?(): RawSyscallTaker | undefined
  /** Optional, for stages after enrichment: writes an enriched syscall record from its bytes. */
  rawSyscallWriter?(): RawSyscallWriter | undefined
}

/** Writes the syscall record a RawSyscallTaker was given, enriched with `meta`. */
export type RawSyscallWriter = (
  ...args: [...Parameters<RawSyscallTaker>, meta: Readonly<EventMeta>]
) => void

interface ProgramSpec {
  name: string
  /** Attached to the cgroup v2 root instead of a tracepoint. */
  cgroup?: boolean
  /**
   * Cheaper programs that replace this one when they attach (config.acceptHook): this one is
   * then the fallback.
   */
  preferred?: string[]
}

const FAMILY_PROGRAMS: Record<Family, ProgramSpec[]> = {
  exec: [
    { name: 'handle_sched_process_exec' },
    { name: 'handle_sched_process_fork' },
    { name: 'handle_sched_process_exit' },
  ],
  net: [
    { name: 'handle_inet_sock_set_state' },
    // Per-syscall tracepoints test a bitmap before any program runs (~10 ns on other
    // syscalls); tp_btf/sys_exit runs a program on every syscall exit (~70-100 ns).
    { name: 'handle_sys_exit', preferred: ['handle_sys_exit_accept', 'handle_sys_exit_accept4'] },
    { name: 'handle_skb_ingress', cgroup: true },
    { name: 'handle_skb_egress', cgroup: true },
  ],
  syscall: [{ name: 'handle_sys_enter' }],
  file: [
    'handle_sys_exit_openat',
    'handle_sys_exit_open',
    'handle_sys_exit_openat2',
    'handle_sys_exit_creat',
    // After the exits: an entry that stored O_TRUNC before its exit was attached would mark
    // the thread's next open as a truncate.
    'handle_sys_enter_openat',
    'handle_sys_enter_open',
    'handle_sys_enter_openat2',
    'handle_sched_process_exec',
    'handle_sys_enter_unlink',
    'handle_sys_enter_unlinkat',
    'handle_sys_enter_rmdir',
    'handle_sys_enter_mkdir',
    'handle_sys_enter_mkdirat',
    'handle_sys_enter_rename',
    'handle_sys_enter_renameat',
    'handle_sys_enter_renameat2',
    'handle_sys_exit_unlink',
    'handle_sys_exit_unlinkat',
    'handle_sys_exit_rmdir',
    'handle_sys_exit_mkdir',
    'handle_sys_exit_mkdirat',
    'handle_sys_exit_rename',
    'handle_sys_exit_renameat',
    'handle_sys_exit_renameat2',
    'handle_sys_exit_truncate',
    'handle_sys_exit_ftruncate',
    'handle_sys_enter_truncate',
    'handle_sys_enter_ftruncate',
  ].map((name) => ({ name })),
}

/** Programs of an object that the collector never attaches (benchmarks' baselines). */
const UNUSED_PROGRAMS: Partial<Record<Family, string[]>> = {
  file: ['bench_empty_exit_openat'],
}

/** Offsets of the file dedup map's value (struct ebf_file_seen). */
const FILE_SEEN = LAYOUTS.ebf_file_seen.fields

/** Syscall counters unchanged for this many reads are deleted (their cgroup is likely gone). */
const SYSCALL_COUNT_IDLE_READS = 300

export interface CaptureReport {
  families: { family: Family; programs: string[] }[]
  features: ReturnType<typeof probeFeatures>
  cgroupRoot?: string
  securitySyscalls: string[]
}

export interface CaptureStats {
  batches: number
  records: number
  decodeErrors: DecodeErrors
  /** Records the kernel could not hand over, summed over families and reasons. */
  dropped: number
  /** Time the JavaScript thread spent decoding batches, in ns. */
  decodeNs: number
  perFamily: Record<Family, { records: number; dropped: number }>
}

interface FamilyState {
  family: Family
  object: BpfObject
  dropTotals: Map<string, number>
  /** The syscall family's slot counters (the fast path of the per-call count). */
  slots?: SyscallSlots
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value)
  return b
}

/**
 * Attaches every program of `names`, in order, and returns those that attached. With
 * `required` a failure throws; otherwise it is logged and the caller attaches the fallback.
 * A program attached before the failure stays: the fallback sees the same calls and the
 * BPF side reports each accept once.
 */
function attachPreferred(
  object: BpfObject,
  names: string[],
  logger: Logger,
  options: { required: boolean; fallback: string },
): string[] {
  const attached: string[] = []
  for (const name of names) {
    try {
      object.attach(name)
      attached.push(name)
    } catch (err) {
      if (options.required || !(err instanceof NativeError)) throw err
      logger.warn(
        { program: name, err: err.message, fallback: options.fallback },
        'syscall tracepoint unavailable (is tracefs mounted?): using a program on every syscall exit',
      )
      break
    }
  }
  return attached
}

export class KernelCapture {
  readonly report: CaptureReport
  private readonly states: FamilyState[]
  private readonly sink: CaptureSink
  private readonly logger: Logger
  /** Decode options of the syscall family's batches and of every other family's. */
  private readonly syscallDecode: DecodeOptions
  private readonly otherDecode: DecodeOptions
  private readonly syscallCounts = new DeltaTracker(1)
  private readonly traffic = new DeltaTracker(2)
  /** file: the latest sighting of each dedup key, and the repeat total last read for it. */
  private readonly fileSightings = new Map<string, FileEvent>()
  private readonly fileRepeats = new Map<string, number>()
  private readonly stats_: CaptureStats
  private timer: NodeJS.Timeout | undefined
  private lastCounterRead: number
  private stopped = false

  private constructor(
    report: CaptureReport,
    families: Family[],
    states: FamilyState[],
    sink: CaptureSink,
    logger: Logger,
    stringArgs: (nr: number) => readonly number[],
  ) {
    this.report = report
    this.states = states
    this.sink = sink
    this.logger = logger
    this.otherDecode = { stringArgs }
    const takeSyscall = families.includes('syscall') ? sink.rawSyscalls?.() : undefined
    this.syscallDecode = takeSyscall ? { stringArgs, takeSyscall } : this.otherDecode
    this.lastCounterRead = bootTimeNs()
    const perFamily = {} as CaptureStats['perFamily']
    for (const f of families) perFamily[f] = { records: 0, dropped: 0 }
    this.stats_ = {
      batches: 0,
      records: 0,
      decodeErrors: newDecodeErrors(),
      dropped: 0,
      decodeNs: 0,
      perFamily,
    }
  }

  /** Loads, attaches and starts draining every configured family. */
  /**
   * `rawTap`, when given, sees every raw batch before it is decoded (for recording golden
   * fixtures and debugging a decoder); the batch must not be kept past the call.
   */
  static start(
    config: CollectorConfig,
    sink: CaptureSink,
    logger: Logger,
    rawTap?: (family: Family, batch: Buffer) => void,
  ): KernelCapture {
    const families = config.families
    checkCapturePrerequisites({ net: families.includes('net') })
    const features = probeFeatures()
    checkKernelSupport(features, families)
    const cgroupRoot = families.includes('net')
      ? (config.cgroupRoot ?? findCgroup2Mount())
      : undefined

    const securitySyscalls = config.securitySyscalls
    const stringArgsByNr = new Map<number, readonly number[]>()
    const events = Buffer.alloc(LIMITS.SYSCALL_NR_MAX)
    const strings = Buffer.alloc(LIMITS.SYSCALL_NR_MAX)
    for (const name of securitySyscalls) {
      const nr = syscallNumber(name)
      if (nr === undefined || nr >= LIMITS.SYSCALL_NR_MAX) continue
      const args = (DEFAULT_SECURITY_SYSCALLS[name] ?? []).slice(0, 2)
      events[nr] = 1
      strings[nr] = ((args[0] ?? -1) + 1) | (((args[1] ?? -1) + 1) << 4)
      stringArgsByNr.set(nr, args)
    }

    const states: FamilyState[] = []
    const report: CaptureReport = { families: [], features, securitySyscalls }
    if (cgroupRoot) report.cgroupRoot = cgroupRoot
    const capture = new KernelCapture(
      report,
      families,
      states,
      sink,
      logger,
      (nr) => stringArgsByNr.get(nr) ?? [],
    )
    try {
      for (const family of families) {
        const object = BpfObject.open(join(config.bpfDir, `${family}.bpf.o`))
        states.push({ family, object, dropTotals: new Map() })
        object.setGlobal('self_tgid', u32(process.pid))
        const ringBytes = ringBytesOf(config, family)
        object.setGlobal('wakeup_bytes', u32(wakeupBytes(config, ringBytes)))
        object.setMaxEntries('events', ringBytes)
        if (family === 'exec') object.setGlobal('args_max', u32(config.argsMax))
        if (family === 'net') {
          // The owner of an accepted connection is read when accept returns in it.
          object.setGlobal('accept_nr', u32(syscallNumber('accept') ?? 0xffffffff))
          object.setGlobal('accept4_nr', u32(syscallNumber('accept4') ?? 0xffffffff))
        }
        if (family === 'syscall') {
          object.setGlobal('syscall_events', events)
          object.setGlobal('syscall_string_args', strings)
        }
        if (family === 'file') {
          const window = Buffer.alloc(8)
          window.writeBigUInt64LE(BigInt(config.fileDedupWindowMs) * 1_000_000n)
          object.setGlobal('dedup_window_ns', window)
        }
        for (const name of UNUSED_PROGRAMS[family] ?? []) object.setAutoload(name, false)
        object.load()
        const programs: string[] = []
        for (const spec of FAMILY_PROGRAMS[family]) {
          if (spec.preferred && config.acceptHook !== 'sys-exit') {
            const attached = attachPreferred(object, spec.preferred, logger, {
              required: config.acceptHook === 'syscall-tracepoints',
              fallback: spec.name,
            })
            programs.push(...attached)
            if (attached.length === spec.preferred.length) continue
          }
          object.attach(
            spec.name,
            spec.cgroup && cgroupRoot ? { cgroupPath: cgroupRoot } : undefined,
          )
          programs.push(spec.name)
        }
        object.openRingBuffer(
          'events',
          { batchBytes: config.batchBytes, flushMs: config.flushMs },
          (batch, _records, lost) => {
            rawTap?.(family, batch)
            capture.onBatch(family, batch, lost)
          },
        )
        report.families.push({ family, programs })
      }
    } catch (err) {
      capture.closeObjects()
      if (err instanceof NativeError) {
        throw new KernelSupportError(`BPF_${err.code}`, err.message, { cause: err })
      }
      throw err
    }
    capture.timer = setInterval(() => capture.pollCounters(), config.counterIntervalMs)
    capture.timer.unref()
    return capture
  }

  private onBatch(family: Family, batch: Buffer, lost: number): void {
    const out: RecordEvent[] = []
    const started = process.hrtime.bigint()
    const options = family === 'syscall' ? this.syscallDecode : this.otherDecode
    // decodeNs includes the syscall records the sink wrote from the bytes while it ran.
    const n = decodeBatch(batch, out, this.stats_.decodeErrors, options)
    this.stats_.decodeNs += Number(process.hrtime.bigint() - started)
    this.stats_.batches++
    this.stats_.records += n
    this.stats_.perFamily[family].records += n
    if (family === 'file')
      for (const e of out) if (e.kind === 'file' && e.key) this.fileSightings.set(e.key, e)
    if (lost > 0) {
      // Records the drain took but could not keep (out of memory) are counted here, not in
      // the drops map.
      this.stats_.dropped += lost
      this.stats_.perFamily[family].dropped += lost
      this.sink.counters([
        { kind: 'drops', bootNs: bootTimeNs(), family, reason: 'buffer_full', count: lost },
      ])
    }
    if (out.length > 0) this.sink.records(out, family)
  }

  /** Reads every counter map and hands the deltas to the sink. */
  pollCounters(): CounterEvent[] {
    if (this.stopped) return []
    const now = bootTimeNs()
    const intervalNs = now - this.lastCounterRead
    this.lastCounterRead = now
    const events: CounterEvent[] = []
    for (const state of this.states) {
      events.push(...this.readDrops(state, now))
      if (state.family === 'syscall') {
        const dump = state.object.mapDump('syscall_counts') as MapDump
        const { deltas, idle } = syscallCountDeltas(
          this.syscallCounts,
          dump,
          now,
          intervalNs,
          SYSCALL_COUNT_IDLE_READS,
        )
        for (const key of idle) {
          state.object.mapDelete('syscall_counts', key)
          this.syscallCounts.forget(key)
        }
        state.slots ??= new SyscallSlots(state.object)
        const slotDeltas = state.slots.read(now, intervalNs, SYSCALL_COUNT_IDLE_READS)
        // Cgroups still counted in the hash are busy ones without a slot: give them one.
        state.slots.assign(new Set(deltas.map((d) => d.cgroupId)))
        events.push(...mergeSyscallCounts([...deltas, ...slotDeltas]))
      } else if (state.family === 'file') {
        const repeats = this.fileRepeatDeltas(state.object.mapDump('file_seen') as MapDump)
        if (repeats.length > 0) this.sink.records(repeats, 'file')
      } else if (state.family === 'net') {
        events.push(
          ...trafficDeltas(
            this.traffic,
            state.object.mapDump('traffic') as MapDump,
            now,
            intervalNs,
          ),
        )
      }
    }
    if (events.length > 0) this.sink.counters(events)
    return events
  }

  /**
   * Repeats the kernel counted since the last read, one record per key that grew, carrying its
   * sighting's path and process. A key gone from the map (LRU eviction) is forgotten.
   */
  private fileRepeatDeltas(dump: MapDump): FileEvent[] {
    const out: FileEvent[] = []
    const seen = new Set<string>()
    const view = new DataView(dump.values.buffer, dump.values.byteOffset, dump.values.byteLength)
    for (let i = 0; i < dump.count; i++) {
      const key = dump.keys.toString('latin1', i * dump.keySize, (i + 1) * dump.keySize)
      const at = i * ((dump.valueSize + 7) & ~7)
      const total = Number(view.getBigUint64(at + FILE_SEEN.repeats.offset, true))
      seen.add(key)
      const delta = total - (this.fileRepeats.get(key) ?? 0)
      const sighting = this.fileSightings.get(key)
      // A sighting still in the ring (or lost) keeps its repeats for a later read.
      if (delta <= 0 || !sighting) continue
      this.fileRepeats.set(key, total)
      const { key: _key, ...rest } = sighting
      out.push({
        ...rest,
        bootNs: Number(view.getBigUint64(at + FILE_SEEN.last_ns.offset, true)),
        count: delta,
        repeat: true,
      })
    }
    for (const key of this.fileRepeats.keys()) {
      if (seen.has(key)) continue
      this.fileRepeats.delete(key)
      this.fileSightings.delete(key)
    }
    return out
  }

  private readDrops(state: FamilyState, now: number): DropDelta[] {
    const dump = state.object.mapDump('drops') as MapDump
    const out: DropDelta[] = []
    const view = new DataView(dump.keys.buffer, dump.keys.byteOffset, dump.keys.byteLength)
    const stride = (dump.valueSize + 7) & ~7
    for (let i = 0; i < dump.count; i++) {
      const reason = DROP_REASONS[view.getUint32(i * dump.keySize, true)]
      if (!reason) continue
      let total = 0
      for (let cpu = 0; cpu < dump.numCpus; cpu++) {
        total += Number(dump.values.readBigUInt64LE((i * dump.numCpus + cpu) * stride))
      }
      const before = state.dropTotals.get(reason) ?? 0
      if (total > before) {
        out.push({
          kind: 'drops',
          bootNs: now,
          family: state.family,
          reason,
          count: total - before,
        })
        this.stats_.dropped += total - before
        this.stats_.perFamily[state.family].dropped += total - before
        state.dropTotals.set(reason, total)
      }
    }
    return out
  }

  stats(): CaptureStats {
    return structuredClone(this.stats_)
  }

  /**
   * Detaches everything; resolves once every batch still held by a drain thread has been
   * decoded and handed to the sink. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await Promise.all(this.states.map((s) => s.object.close()))
    this.stopped = true
  }

  /** Reads counters one last time; call before stop() to keep the final interval. */
  finalCounters(): CounterEvent[] {
    return this.pollCounters()
  }

  private closeObjects(): void {
    for (const s of this.states) {
      s.object
        .close()
        .catch((err: unknown) =>
          this.logger.warn({ err, family: s.family }, 'closing BPF object failed'),
        )
    }
  }
}

export { syscallName }

/** Bytes a ring of `ringBytes` holds before its reader is woken: the setting, or 64 KiB (a
 * quarter of a smaller ring). */
export function wakeupBytes(config: Pick<CollectorConfig, 'ringWakeupBytes'>, ringBytes: number) {
  return config.ringWakeupBytes ?? Math.min(64 * 1024, ringBytes / 4)
}
