// Decoded events ⇄ ebbflow.v1 wire records. Kernel timestamps are CLOCK_BOOTTIME; the wire
// carries wall-clock ns since the epoch, converted with one offset taken at start (as the
// JSON sink does) so a later clock step cannot reorder records. uint64 values are exact: the
// offset and the sums are Long, raw syscall arguments go through bigint.

import { Long, type pb, v1, v1Types } from '@ebbflow/proto'
import { BatchWriter } from './batch-writer.ts'
import { wallOffsetNs } from './event-time.ts'
import { LAYOUTS } from './events/layout.generated.ts'
import { syscallName } from './events/syscalls.ts'
import type {
  CapturedEvent,
  DropDelta,
  DropReason,
  EventMeta,
  ExecEvent,
  ExitEvent,
  Family,
  FileAccessKind,
  FileEvent,
  FileOp,
  ForkEvent,
  SyscallCountDelta,
  SyscallEvent,
  TaskFields,
  TcpEvent,
  TcpKind,
  TrafficDelta,
} from './events/types.ts'

type WireMeta = pb.v1.Metadata.$Properties
type U64 = number | Long | null | undefined

export { BatchWriter } from './batch-writer.ts'
export { DLQ_TOPIC, TOPICS } from './topics.ts'

/** Which topic family an event belongs to (drops go with the family they count). */
export function familyOf(e: CapturedEvent | Decoded<CapturedEvent | WireDrops>): Family {
  switch (e.kind) {
    case 'exec':
    case 'exit':
    case 'fork':
      return 'exec'
    case 'tcp':
    case 'traffic':
      return 'net'
    case 'syscall':
    case 'syscall_count':
      return 'syscall'
    case 'file':
      return 'file'
    case 'drops':
      return e.family
  }
}

/**
 * An enum of the proto as names ⇄ numbers: `KIND_CONNECT_FAILED` of `TcpEvent.Kind` is
 * 'connect_failed'. The numbers come from the reflection root, never from a copy.
 */
function protoEnum<N extends string>(
  type: keyof typeof v1Types,
  name: string,
  names: readonly N[],
): { num: Record<N, number>; name: (n: number | null | undefined) => N | undefined } {
  const e = v1Types[type].lookupEnum(name)
  const prefix = `${name.toUpperCase()}_`
  const num = {} as Record<N, number>
  const byNum = new Map<number, N>()
  for (const [key, value] of Object.entries(e.values)) {
    if (!key.startsWith(prefix)) throw new Error(`${type}.${name}.${key}: expected ${prefix}*`)
    const n = key.slice(prefix.length).toLowerCase() as N
    if (n === ('unspecified' as N)) continue
    if (!names.includes(n)) throw new Error(`${type}.${name}.${key} has no name in TypeScript`)
    num[n] = value
    byNum.set(value, n)
  }
  for (const n of names)
    if (num[n] === undefined) throw new Error(`'${n}' is not a value of ${type}.${name}`)
  return { num, name: (v) => (v == null ? undefined : byNum.get(v)) }
}

const TCP_KIND = protoEnum<TcpKind>('TcpEvent', 'Kind', [
  'connect',
  'accept',
  'close',
  'connect_failed',
])
const TCP_ROLE = protoEnum<TcpEvent['role']>('TcpEvent', 'Role', ['active', 'passive'])
const DIRECTION = protoEnum<TrafficDelta['direction']>('TrafficCounter', 'Direction', [
  'ingress',
  'egress',
])
const FAMILY = protoEnum<Family>('Drops', 'Family', ['exec', 'net', 'syscall', 'file'])
const FILE_ACCESS = protoEnum<FileAccessKind>('FileAccess', 'Access', [
  'read',
  'write',
  'exec',
  'create',
  'remove',
  'truncate',
])
const FILE_OP = protoEnum<FileOp>('FileAccess', 'Op', [
  'open',
  'exec',
  'unlink',
  'rmdir',
  'mkdir',
  'rename',
  'truncate',
])
/** queue_full: dropped by the publisher past its memory budget (not a kernel reason). */
export type WireDropReason = DropReason | 'queue_full'
const REASON = protoEnum<WireDropReason>('Drops', 'Reason', [
  'buffer_full',
  'map_full',
  'read_failed',
  'queue_full',
])

/** Metadata's fields as the reflection root lists them: adding one to the proto carries it. */
const META_FIELDS = v1Types.Metadata.fieldsArray.map((f) => ({
  name: f.name as keyof EventMeta,
  map: f.map,
  bool: f.type === 'bool',
}))

function metaToWire(m: EventMeta | undefined): WireMeta | null {
  if (!m) return null
  const w: Record<string, unknown> = {}
  for (const f of META_FIELDS) {
    const v = m[f.name]
    if (v === undefined || v === null) continue
    if (f.bool ? v === false : f.map ? Object.keys(v).length === 0 : false) continue
    w[f.name] = v
  }
  return w as WireMeta
}

function metaFromWire(w: WireMeta | null | undefined): EventMeta | undefined {
  if (!w) return undefined
  const m: Record<string, unknown> = { node: w.node ?? '' }
  const wire = w as Record<string, unknown>
  for (const f of META_FIELDS) {
    const v = wire[f.name]
    if (f.name === 'node' || v === undefined || v === null) continue
    if (f.bool ? v === false : f.map ? Object.keys(v as object).length === 0 : false) continue
    m[f.name] = f.map ? { ...(v as object) } : v
  }
  return m as EventMeta
}

function taskToWire(e: TaskFields): pb.v1.Task.$Properties {
  return {
    cgroupId: e.cgroupId,
    pid: e.pid,
    tgid: e.tgid,
    ppid: e.ppid,
    uid: e.uid,
    gid: e.gid,
    pidnsIno: e.pidnsIno,
    mntnsIno: e.mntnsIno,
    comm: e.comm,
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** A raw syscall argument: most (small values, user pointers) fit a double exactly, which the
 * encoder writes as it would the Long, without fromBigInt's bigint arithmetic. */
const argToWire = (a: bigint): number | Long =>
  a <= MAX_SAFE ? Number(a) : Long.fromBigInt(a, true)

const u64 = (v: U64): bigint =>
  v == null ? 0n : typeof v === 'number' ? BigInt(v) : BigInt(v.toString())
const num = (v: U64): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber())

function taskFromWire(
  t: pb.v1.Task.$Properties | null | undefined,
  meta: WireMeta | null | undefined,
): TaskFields {
  const task: TaskFields = {
    cgroupId: num(t?.cgroupId),
    pid: t?.pid ?? 0,
    tgid: t?.tgid ?? 0,
    ppid: t?.ppid ?? 0,
    uid: t?.uid ?? 0,
    gid: t?.gid ?? 0,
    pidnsIno: num(t?.pidnsIno),
    mntnsIno: num(t?.mntnsIno),
    comm: t?.comm ?? '',
  }
  const m = metaFromWire(meta)
  if (m) task.meta = m
  return task
}

const TWO_32 = 2 ** 32

/** CLOCK_BOOTTIME ns ⇄ wall-clock ns since the epoch, with one offset. */
export class WallClock {
  /** wall ns − boot ns, fixed for the clock's life. */
  readonly offsetNs: bigint
  private readonly offset: Long

  /** The offset's two 32-bit halves, for adding a boot time without a Long per step. */
  private readonly offsetLow: number
  private readonly offsetHigh: number

  constructor(offsetNs: bigint) {
    this.offsetNs = offsetNs
    this.offset = Long.fromBigInt(offsetNs, true)
    this.offsetLow = this.offset.low >>> 0
    this.offsetHigh = this.offset.high >>> 0
  }

  /** The offset now: `Date.now()` against the given CLOCK_BOOTTIME reading. */
  static fromBootTime(bootNowNs: number): WallClock {
    return new WallClock(wallOffsetNs(bootNowNs))
  }

  toWall(bootNs: number): Long {
    // Called once per event: one Long, added in 32-bit halves, instead of the three objects
    // fromNumber + add make. A boot time off the fast path's range takes the general one.
    if (!(bootNs >= 0 && bootNs <= Number.MAX_SAFE_INTEGER && Number.isInteger(bootNs)))
      return this.offset.add(Long.fromNumber(bootNs, true))
    const low = this.offsetLow + (bootNs % TWO_32)
    const carry = low >= TWO_32 ? 1 : 0
    const high = this.offsetHigh + Math.floor(bootNs / TWO_32) + carry
    return new Long(low | 0, high | 0, true)
  }

  /** Writes toWall(bootNs) as a uint64 varint, without a Long on the usual path. */
  writeWall(w: BatchWriter, bootNs: number): void {
    if (!(bootNs >= 0 && bootNs <= Number.MAX_SAFE_INTEGER && Number.isInteger(bootNs))) {
      const t = this.toWall(bootNs)
      w.uint64Parts(t.low, t.high)
      return
    }
    const low = this.offsetLow + (bootNs % TWO_32)
    const carry = low >= TWO_32 ? 1 : 0
    w.uint64Parts(low >>> 0, (this.offsetHigh + Math.floor(bootNs / TWO_32) + carry) >>> 0)
  }
}

/** Field numbers of EventBatch's repeated fields, for encoding a batch one event at a time. */
export const BATCH_FIELD: Readonly<Record<CapturedEvent['kind'], number>> = (() => {
  const byName = v1Types.EventBatch.fields
  const kinds = {
    exec: 'exec',
    exit: 'exit',
    fork: 'fork',
    tcp: 'tcp',
    traffic: 'traffic',
    syscall: 'syscall',
    syscall_count: 'syscallCount',
    drops: 'drops',
    file: 'file',
  } as const satisfies Record<CapturedEvent['kind'], string>
  return Object.fromEntries(
    Object.entries(kinds).map(([kind, field]) => [kind, byName[field]!.id]),
  ) as Record<CapturedEvent['kind'], number>
})()

/** The wire record of one event (a plain object the generated encoder accepts). */
export function toWire(e: CapturedEvent, clock: WallClock): object {
  return wireOf(e, clock, metaToWire(e.meta))
}

function wireOf(e: CapturedEvent, clock: WallClock, meta: WireMeta | null): object {
  const timeNs = clock.toWall(e.bootNs)
  switch (e.kind) {
    case 'exec':
      return {
        timeNs,
        task: taskToWire(e),
        meta,
        parentComm: e.parentComm,
        filename: e.filename,
        args: e.args,
        argsTotalBytes: e.argsTotalBytes,
        argsTruncated: e.argsTruncated,
        filenameTruncated: e.filenameTruncated,
        argsReadFailed: e.argsReadFailed,
        seenAtStart: e.seenAtStart === true,
      } satisfies pb.v1.Exec.$Properties
    case 'exit':
      return {
        timeNs,
        task: taskToWire(e),
        meta,
        durationNs: e.durationNs,
        durationFromFork: e.durationFromFork,
        exitCode: e.exitCode,
        signal: e.signal,
        coreDumped: e.coreDumped,
      } satisfies pb.v1.Exit.$Properties
    case 'fork':
      return {
        timeNs,
        task: taskToWire(e),
        meta,
        childPid: e.childPid,
        childTgid: e.childTgid,
      } satisfies pb.v1.Fork.$Properties
    case 'tcp':
      return {
        timeNs,
        meta,
        kind: TCP_KIND.num[e.tcp],
        role: TCP_ROLE.num[e.role],
        cgroupId: e.cgroupId,
        sockId: e.sockId,
        pid: e.pid,
        comm: e.comm,
        netnsIno: e.netnsIno,
        ipFamily: e.family,
        saddr: e.saddr,
        daddr: e.daddr,
        sport: e.sport,
        dport: e.dport,
        durationNs: e.durationNs,
        bytesSent: e.bytesSent,
        bytesReceived: e.bytesReceived,
      } satisfies pb.v1.TcpEvent.$Properties
    case 'traffic':
      return {
        timeNs,
        meta,
        intervalNs: e.intervalNs,
        cgroupId: e.cgroupId,
        direction: DIRECTION.num[e.direction],
        protocol: e.protocol,
        ipFamily: e.family,
        remoteAddr: e.remoteAddr,
        remotePort: e.remotePort,
        localPort: e.localPort,
        packets: e.packets,
        bytes: e.bytes,
      } satisfies pb.v1.TrafficCounter.$Properties
    case 'syscall':
      return {
        timeNs,
        task: taskToWire(e),
        meta,
        syscallNr: e.syscallNr,
        syscall: e.syscall,
        args: e.args.map(argToWire),
        strings: e.strings,
      } satisfies pb.v1.SyscallEvent.$Properties
    case 'syscall_count':
      return {
        timeNs,
        meta,
        intervalNs: e.intervalNs,
        cgroupId: e.cgroupId,
        syscallNr: e.syscallNr,
        syscall: e.syscall,
        count: e.count,
      } satisfies pb.v1.SyscallCount.$Properties
    case 'drops':
      // A decoded queue_full record (WireDrops) carries its batch count on.
      return dropsToWire(
        e.bootNs,
        e.family,
        e.reason,
        e.count,
        clock,
        meta,
        (e as { batches?: number }).batches,
      )
    case 'file':
      return {
        timeNs,
        task: taskToWire(e),
        meta,
        path: e.path,
        access: FILE_ACCESS.num[e.access],
        op: FILE_OP.num[e.op],
        directory: e.directory,
        pathTruncated: e.pathTruncated,
        count: e.count,
        repeat: e.repeat,
      } satisfies pb.v1.FileAccess.$Properties
  }
}

export function dropsToWire(
  bootNs: number,
  family: Family,
  reason: WireDropReason,
  count: number,
  clock: WallClock,
  meta: WireMeta | null = null,
  batches?: number,
): pb.v1.Drops.$Properties {
  return {
    timeNs: clock.toWall(bootNs),
    meta,
    family: FAMILY.num[family],
    reason: REASON.num[reason],
    count,
    ...(batches !== undefined ? { batches } : {}),
  }
}

/** The message of each event kind, and the tag of its `meta` field (from the reflection root). */
const MESSAGE_OF: Readonly<Record<CapturedEvent['kind'], keyof typeof v1Types>> = {
  exec: 'Exec',
  exit: 'Exit',
  fork: 'Fork',
  tcp: 'TcpEvent',
  traffic: 'TrafficCounter',
  syscall: 'SyscallEvent',
  syscall_count: 'SyscallCount',
  drops: 'Drops',
  file: 'FileAccess',
}
const ENCODE = Object.fromEntries(
  Object.entries(MESSAGE_OF).map(([kind, msg]) => {
    const type = v1Types[msg]
    const metaField = type.fields.meta
    if (!metaField) throw new Error(`${msg} has no meta field`)
    return [
      kind,
      {
        // Looked up at each call: protobufjs replaces a type's encode by generated code on
        // first use.
        encode: ((m, w) => type.encode(m, w)) as EncodeFn,
        metaTag: (metaField.id << 3) | 2,
      },
    ]
  }),
) as Record<CapturedEvent['kind'], { encode: EncodeFn; metaTag: number }>
type EncodeFn = (message: object, writer: import('protobufjs').Writer) => unknown

/**
 * Encoded Metadata by object. The enricher hands every event of a cgroup the same frozen meta,
 * so it is encoded once per cgroup (and pod-cache version) instead of once per event; an
 * object that is not frozen could change after encoding and is encoded each time.
 */
const metaBytes = new WeakMap<EventMeta, Uint8Array>()

function encodedMeta(m: EventMeta): Uint8Array {
  let bytes = metaBytes.get(m)
  if (bytes) return bytes
  bytes = v1.Metadata.encode(metaToWire(m) ?? {}).finish()
  if (Object.isFrozen(m)) metaBytes.set(m, bytes)
  return bytes
}

/**
 * Tags (field number and wire type) of every field of `msg`, from the reflection root. Throws
 * unless `written` names exactly the message's fields: a field added to the proto fails at
 * load until the direct encoder below writes it, instead of being left out of every record.
 */
function tagsOf<F extends string>(
  msg: keyof typeof v1Types,
  written: readonly F[],
): Record<F, number> {
  const type = v1Types[msg]
  const names = type.fieldsArray.map((f) => f.name)
  const missing = names.filter((n) => !written.includes(n as F))
  const unknown = written.filter((n) => !names.includes(n))
  if (missing.length > 0 || unknown.length > 0)
    throw new Error(
      `the direct encoder of ${msg} is out of step with the proto: not written ${missing.join(', ') || '-'}; not in the proto ${unknown.join(', ') || '-'}`,
    )
  const tags = {} as Record<F, number>
  for (const f of type.fieldsArray) {
    f.resolve()
    const delimited =
      f.type === 'string' ||
      f.type === 'bytes' ||
      f.repeated ||
      (f.resolvedType !== null && 'fieldsArray' in f.resolvedType)
    tags[f.name as F] = (f.id << 3) | (delimited ? 2 : 0)
  }
  return tags
}

const T_TASK = tagsOf('Task', [
  'cgroupId',
  'pid',
  'tgid',
  'ppid',
  'uid',
  'gid',
  'pidnsIno',
  'mntnsIno',
  'comm',
])
const T_EXEC = tagsOf('Exec', [
  'timeNs',
  'task',
  'meta',
  'parentComm',
  'filename',
  'args',
  'argsTotalBytes',
  'argsTruncated',
  'filenameTruncated',
  'argsReadFailed',
  'seenAtStart',
])
const T_EXIT = tagsOf('Exit', [
  'timeNs',
  'task',
  'meta',
  'durationNs',
  'durationFromFork',
  'exitCode',
  'signal',
  'coreDumped',
])
const T_FORK = tagsOf('Fork', ['timeNs', 'task', 'meta', 'childPid', 'childTgid'])
const T_TCP = tagsOf('TcpEvent', [
  'timeNs',
  'meta',
  'kind',
  'role',
  'cgroupId',
  'sockId',
  'pid',
  'comm',
  'netnsIno',
  'ipFamily',
  'saddr',
  'daddr',
  'sport',
  'dport',
  'durationNs',
  'bytesSent',
  'bytesReceived',
])
const T_TRAFFIC = tagsOf('TrafficCounter', [
  'timeNs',
  'meta',
  'intervalNs',
  'cgroupId',
  'direction',
  'protocol',
  'ipFamily',
  'remoteAddr',
  'remotePort',
  'localPort',
  'packets',
  'bytes',
])
const T_SYSCALL = tagsOf('SyscallEvent', [
  'timeNs',
  'task',
  'meta',
  'syscallNr',
  'syscall',
  'args',
  'strings',
])
const T_STRING_ARG = (() => {
  const type = v1Types.SyscallEvent.lookupType('StringArg')
  const arg = type.fields.arg
  const value = type.fields.value
  if (!arg || !value || type.fieldsArray.length !== 2)
    throw new Error('the direct encoder of SyscallEvent.StringArg is out of step with the proto')
  return { arg: arg.id << 3, value: (value.id << 3) | 2 }
})()
const T_SYSCALL_COUNT = tagsOf('SyscallCount', [
  'timeNs',
  'meta',
  'intervalNs',
  'cgroupId',
  'syscallNr',
  'syscall',
  'count',
])
const T_FILE = tagsOf('FileAccess', [
  'timeNs',
  'task',
  'meta',
  'path',
  'access',
  'op',
  'directory',
  'pathTruncated',
  'count',
  'repeat',
])

function timeField(w: BatchWriter, tag: number, bootNs: number, clock: WallClock): void {
  clock.writeWall(w.uint32(tag), bootNs)
}

function metaField(w: BatchWriter, tag: number, m: EventMeta | undefined): void {
  if (m) w.uint32(tag).bytes(encodedMeta(m))
}

function taskField(w: BatchWriter, tag: number, e: TaskFields): void {
  w.uint32(tag).fork()
  w.uint32(T_TASK.cgroupId).uint64(e.cgroupId)
  w.uint32(T_TASK.pid).uint32(e.pid)
  w.uint32(T_TASK.tgid).uint32(e.tgid)
  w.uint32(T_TASK.ppid).uint32(e.ppid)
  w.uint32(T_TASK.uid).uint32(e.uid)
  w.uint32(T_TASK.gid).uint32(e.gid)
  w.uint32(T_TASK.pidnsIno).uint64(e.pidnsIno)
  w.uint32(T_TASK.mntnsIno).uint64(e.mntnsIno)
  w.uint32(T_TASK.comm).string(e.comm)
  w.ldelim()
}

/**
 * The event's message written field by field in field-number order, as protobufjs would write
 * the wire record toWire makes (every field, defaults included), without the intermediate
 * objects. Drops (a few a second) go through protobufjs.
 */
function writeDirect(w: BatchWriter, e: CapturedEvent, clock: WallClock): void {
  switch (e.kind) {
    case 'exec': {
      timeField(w, T_EXEC.timeNs, e.bootNs, clock)
      taskField(w, T_EXEC.task, e)
      metaField(w, T_EXEC.meta, e.meta)
      w.uint32(T_EXEC.parentComm).string(e.parentComm)
      w.uint32(T_EXEC.filename).string(e.filename)
      for (const a of e.args) w.uint32(T_EXEC.args).string(a)
      w.uint32(T_EXEC.argsTotalBytes).uint32(e.argsTotalBytes)
      w.uint32(T_EXEC.argsTruncated).bool(e.argsTruncated)
      w.uint32(T_EXEC.filenameTruncated).bool(e.filenameTruncated)
      w.uint32(T_EXEC.argsReadFailed).bool(e.argsReadFailed)
      w.uint32(T_EXEC.seenAtStart).bool(e.seenAtStart === true)
      return
    }
    case 'exit':
      timeField(w, T_EXIT.timeNs, e.bootNs, clock)
      taskField(w, T_EXIT.task, e)
      metaField(w, T_EXIT.meta, e.meta)
      w.uint32(T_EXIT.durationNs).uint64(e.durationNs)
      w.uint32(T_EXIT.durationFromFork).bool(e.durationFromFork)
      w.uint32(T_EXIT.exitCode).int32(e.exitCode)
      w.uint32(T_EXIT.signal).uint32(e.signal)
      w.uint32(T_EXIT.coreDumped).bool(e.coreDumped)
      return
    case 'fork':
      timeField(w, T_FORK.timeNs, e.bootNs, clock)
      taskField(w, T_FORK.task, e)
      metaField(w, T_FORK.meta, e.meta)
      w.uint32(T_FORK.childPid).uint32(e.childPid)
      w.uint32(T_FORK.childTgid).uint32(e.childTgid)
      return
    case 'tcp':
      timeField(w, T_TCP.timeNs, e.bootNs, clock)
      metaField(w, T_TCP.meta, e.meta)
      w.uint32(T_TCP.kind).uint32(TCP_KIND.num[e.tcp])
      w.uint32(T_TCP.role).uint32(TCP_ROLE.num[e.role])
      w.uint32(T_TCP.cgroupId).uint64(e.cgroupId)
      w.uint32(T_TCP.sockId).uint64(e.sockId)
      w.uint32(T_TCP.pid).uint32(e.pid)
      w.uint32(T_TCP.comm).string(e.comm)
      w.uint32(T_TCP.netnsIno).uint64(e.netnsIno)
      w.uint32(T_TCP.ipFamily).uint32(e.family)
      w.uint32(T_TCP.saddr).string(e.saddr)
      w.uint32(T_TCP.daddr).string(e.daddr)
      w.uint32(T_TCP.sport).uint32(e.sport)
      w.uint32(T_TCP.dport).uint32(e.dport)
      w.uint32(T_TCP.durationNs).uint64(e.durationNs)
      w.uint32(T_TCP.bytesSent).uint64(e.bytesSent)
      w.uint32(T_TCP.bytesReceived).uint64(e.bytesReceived)
      return
    case 'traffic':
      timeField(w, T_TRAFFIC.timeNs, e.bootNs, clock)
      metaField(w, T_TRAFFIC.meta, e.meta)
      w.uint32(T_TRAFFIC.intervalNs).uint64(e.intervalNs)
      w.uint32(T_TRAFFIC.cgroupId).uint64(e.cgroupId)
      w.uint32(T_TRAFFIC.direction).uint32(DIRECTION.num[e.direction])
      w.uint32(T_TRAFFIC.protocol).uint32(e.protocol)
      w.uint32(T_TRAFFIC.ipFamily).uint32(e.family)
      w.uint32(T_TRAFFIC.remoteAddr).string(e.remoteAddr)
      w.uint32(T_TRAFFIC.remotePort).uint32(e.remotePort)
      w.uint32(T_TRAFFIC.localPort).uint32(e.localPort)
      w.uint32(T_TRAFFIC.packets).uint64(e.packets)
      w.uint32(T_TRAFFIC.bytes).uint64(e.bytes)
      return
    case 'syscall':
      timeField(w, T_SYSCALL.timeNs, e.bootNs, clock)
      taskField(w, T_SYSCALL.task, e)
      metaField(w, T_SYSCALL.meta, e.meta)
      w.uint32(T_SYSCALL.syscallNr).uint32(e.syscallNr)
      w.uint32(T_SYSCALL.syscall).string(e.syscall)
      if (e.args.length > 0) {
        // Packed, as proto3 repeated scalars are.
        w.uint32(T_SYSCALL.args).fork()
        for (const a of e.args)
          if (a <= MAX_SAFE) w.uint64(Number(a))
          else w.uint64Parts(Number(a & 0xffff_ffffn), Number((a >> 32n) & 0xffff_ffffn))
        w.ldelim()
      }
      for (const s of e.strings) {
        w.uint32(T_SYSCALL.strings).fork()
        w.uint32(T_STRING_ARG.arg).uint32(s.arg)
        w.uint32(T_STRING_ARG.value).string(s.value)
        w.ldelim()
      }
      return
    case 'syscall_count':
      timeField(w, T_SYSCALL_COUNT.timeNs, e.bootNs, clock)
      metaField(w, T_SYSCALL_COUNT.meta, e.meta)
      w.uint32(T_SYSCALL_COUNT.intervalNs).uint64(e.intervalNs)
      w.uint32(T_SYSCALL_COUNT.cgroupId).uint64(e.cgroupId)
      w.uint32(T_SYSCALL_COUNT.syscallNr).uint32(e.syscallNr)
      w.uint32(T_SYSCALL_COUNT.syscall).string(e.syscall)
      w.uint32(T_SYSCALL_COUNT.count).uint64(e.count)
      return
    case 'file':
      timeField(w, T_FILE.timeNs, e.bootNs, clock)
      taskField(w, T_FILE.task, e)
      metaField(w, T_FILE.meta, e.meta)
      w.uint32(T_FILE.path).string(e.path)
      w.uint32(T_FILE.access).uint32(FILE_ACCESS.num[e.access])
      w.uint32(T_FILE.op).uint32(FILE_OP.num[e.op])
      w.uint32(T_FILE.directory).bool(e.directory)
      w.uint32(T_FILE.pathTruncated).bool(e.pathTruncated)
      w.uint32(T_FILE.count).uint64(e.count)
      w.uint32(T_FILE.repeat).bool(e.repeat)
      return
    case 'drops':
      // Few: through protobufjs, then copied in.
      w.bytes(
        v1.Drops.encode(wireOf(e, clock, metaToWire(e.meta)) as pb.v1.Drops.$Properties).finish(),
      )
      return
  }
}

/**
 * Appends one event to an EventBatch being written field by field (exact size, one pass). With
 * a BatchWriter (the publisher's) the message is written directly; with a protobufjs Writer it
 * goes through the generated encoder, the event's meta last, from the cache: fields may come in
 * any order in a message.
 */
export function writeEvent(
  w: import('protobufjs').Writer | BatchWriter,
  e: CapturedEvent,
  clock: WallClock,
): void {
  const tag = (BATCH_FIELD[e.kind] << 3) | 2
  if (w instanceof BatchWriter) {
    if (e.kind === 'drops') {
      w.uint32(tag)
      writeDirect(w, e, clock)
      return
    }
    w.uint32(tag).fork()
    writeDirect(w, e, clock)
    w.ldelim()
    return
  }
  const enc = ENCODE[e.kind]
  enc.encode(wireOf(e, clock, null), w.uint32(tag).fork())
  if (e.meta) w.uint32(enc.metaTag).bytes(encodedMeta(e.meta))
  w.ldelim()
}

const RAW_TASK = LAYOUTS.ebf_task.fields
const RAW_SYSCALL = LAYOUTS.ebf_syscall_event_v1.fields
const RAW_STR_LEN = RAW_SYSCALL.str.size / 2
const SYSCALL_BATCH_TAG = (BATCH_FIELD.syscall << 3) | 2

/** Which argument indexes the kernel copied as strings, by syscall number. */
export type StringArgsOf = (nr: number) => readonly number[]

/**
 * Writes one ebf_syscall_event_v1 record, straight from the ring's bytes at `at`, as the
 * EventBatch field writeEvent writes for the event decodeBatch makes of it: the same bytes,
 * without the event object and its six bigint arguments (most of what the collector's garbage
 * collector did under a syscall storm). The caller checked the record's framing and size.
 */
export function writeRawSyscall(
  w: BatchWriter,
  buf: Buffer,
  view: DataView,
  at: number,
  bootNs: number,
  stringArgs: StringArgsOf,
  meta: EventMeta,
  clock: WallClock,
): void {
  const t = at + RAW_SYSCALL.task.offset
  w.uint32(SYSCALL_BATCH_TAG).fork()
  timeField(w, T_SYSCALL.timeNs, bootNs, clock)
  w.uint32(T_SYSCALL.task).fork()
  // As decode reads it (a double): a cgroup id past 2^53 is rounded alike on both paths.
  const cgroupId =
    view.getUint32(t + RAW_TASK.cgroup_id.offset + 4, true) * TWO_32 +
    view.getUint32(t + RAW_TASK.cgroup_id.offset, true)
  w.uint32(T_TASK.cgroupId).uint64(cgroupId)
  w.uint32(T_TASK.pid).uint32(view.getUint32(t + RAW_TASK.pid.offset, true))
  w.uint32(T_TASK.tgid).uint32(view.getUint32(t + RAW_TASK.tgid.offset, true))
  w.uint32(T_TASK.ppid).uint32(view.getUint32(t + RAW_TASK.ppid.offset, true))
  w.uint32(T_TASK.uid).uint32(view.getUint32(t + RAW_TASK.uid.offset, true))
  w.uint32(T_TASK.gid).uint32(view.getUint32(t + RAW_TASK.gid.offset, true))
  w.uint32(T_TASK.pidnsIno).uint32(view.getUint32(t + RAW_TASK.pidns_ino.offset, true))
  w.uint32(T_TASK.mntnsIno).uint32(view.getUint32(t + RAW_TASK.mntns_ino.offset, true))
  w.uint32(T_TASK.comm).cString(buf, t + RAW_TASK.comm.offset, RAW_TASK.comm.size)
  w.ldelim()
  metaField(w, T_SYSCALL.meta, meta)
  const nr = view.getUint32(at + RAW_SYSCALL.syscall_nr.offset, true)
  w.uint32(T_SYSCALL.syscallNr).uint32(nr)
  w.uint32(T_SYSCALL.syscall).string(syscallName(nr))
  // Packed; a uint64 varint from its 32-bit halves is the one the bigint path writes.
  w.uint32(T_SYSCALL.args).fork()
  const args = at + RAW_SYSCALL.args.offset
  for (let i = 0; i < 48; i += 8)
    w.uint64Parts(view.getUint32(args + i, true), view.getUint32(args + i + 4, true))
  w.ldelim()
  const which = stringArgs(nr)
  for (let slot = 0; slot < 2; slot++) {
    const n = view.getUint16(at + RAW_SYSCALL.str_size.offset + slot * 2, true)
    const arg = which[slot]
    if (n === 0 || arg === undefined) continue
    w.uint32(T_SYSCALL.strings).fork()
    w.uint32(T_STRING_ARG.arg).uint32(arg)
    w.uint32(T_STRING_ARG.value).cString(
      buf,
      at + RAW_SYSCALL.str.offset + slot * RAW_STR_LEN,
      Math.min(n, RAW_STR_LEN),
    )
    w.ldelim()
  }
  w.ldelim()
}

/** A publisher's own drop record (reason queue_full) inside a batch: `count` events in
 * `batches` whole batches of the family's topic. */
export function writeQueueDrops(
  w: import('protobufjs').Writer | BatchWriter,
  family: Family,
  count: number,
  bootNs: number,
  clock: WallClock,
  batches = 0,
): void {
  const drops = dropsToWire(bootNs, family, 'queue_full', count, clock, null, batches)
  const tag = (BATCH_FIELD.drops << 3) | 2
  if (w instanceof BatchWriter) w.uint32(tag).bytes(v1.Drops.encode(drops).finish())
  else v1.Drops.encode(drops, w.uint32(tag).fork()).ldelim()
}

/** A drop count as decoded, including the publisher's queue_full. */
export interface WireDrops extends Omit<DropDelta, 'reason'> {
  reason: WireDropReason
  /** queue_full: the whole batches the events were in (absent from older collectors). */
  batches?: number
}

/**
 * An event as read back from the wire: the collector's shape with the wall-clock time it was
 * stamped with (ns since the epoch) in place of `bootNs`, the collector's own clock, which
 * has no meaning away from the node it was captured on. 0 when the record carried no time.
 */
export type Decoded<E> = E extends unknown ? Omit<E, 'bootNs'> & { timeNs: bigint } : never

/** The events of a decoded EventBatch, in the collector's shapes (see `Decoded`), kind by kind. */
export interface DecodedBatch {
  node: string
  collectorInstanceId: string
  bootId: string
  sequence: number
  batchId: string
  /** Wall-clock ns since the epoch of the batch's first and last event (0 when none). */
  firstTimeNs: bigint
  lastTimeNs: bigint
  /**
   * Enum fields holding a value this reader has no name for, as `tcp[0].kind = 9`: unspecified
   * (never sent by a collector) or added by a newer writer. The events carry a placeholder
   * name there, which must not be stored or shown (the API's live tail) as if it were the value
   * sent.
   */
  unknownEnums: string[]
  exec: Decoded<ExecEvent>[]
  exit: Decoded<ExitEvent>[]
  fork: Decoded<ForkEvent>[]
  tcp: Decoded<TcpEvent>[]
  traffic: Decoded<TrafficDelta>[]
  syscall: Decoded<SyscallEvent>[]
  syscallCount: Decoded<SyscallCountDelta>[]
  drops: Decoded<WireDrops>[]
  file: Decoded<FileEvent>[]
}

/** Every event of a decoded batch, kind by kind (each kind in its capture order). */
export function batchEvents(b: DecodedBatch): Decoded<CapturedEvent | WireDrops>[] {
  return [
    ...b.exec,
    ...b.exit,
    ...b.fork,
    ...b.tcp,
    ...b.traffic,
    ...b.syscall,
    ...b.syscallCount,
    ...b.drops,
    ...b.file,
  ]
}

function withMeta<T extends object>(e: T, meta: WireMeta | null | undefined): T {
  const m = metaFromWire(meta)
  if (m) (e as { meta?: EventMeta }).meta = m
  return e
}

/** Decodes an EventBatch (the API's live tail; tests reading what a publisher sent). */
export function decodeEventBatch(bytes: Uint8Array): DecodedBatch {
  const b = v1.EventBatch.decode(bytes)
  const unknownEnums: string[] = []
  const named = <N>(
    value: number | null | undefined,
    name: N | undefined,
    where: string,
    placeholder: N,
  ): N => {
    if (name !== undefined) return name
    unknownEnums.push(`${where} = ${value ?? 0}`)
    return placeholder
  }
  return {
    node: b.node,
    collectorInstanceId: b.collectorInstanceId,
    bootId: b.bootId,
    sequence: num(b.sequence),
    batchId: b.batchId,
    firstTimeNs: u64(b.firstTimeNs),
    lastTimeNs: u64(b.lastTimeNs),
    unknownEnums,
    exec: b.exec.map((x) => ({
      kind: 'exec',
      timeNs: u64(x.timeNs),
      ...taskFromWire(x.task, x.meta),
      parentComm: x.parentComm ?? '',
      filename: x.filename ?? '',
      args: x.args ?? [],
      argsTotalBytes: x.argsTotalBytes ?? 0,
      argsTruncated: x.argsTruncated ?? false,
      filenameTruncated: x.filenameTruncated ?? false,
      argsReadFailed: x.argsReadFailed ?? false,
      ...(x.seenAtStart ? { seenAtStart: true as const } : {}),
    })),
    exit: b.exit.map((x) => ({
      kind: 'exit',
      timeNs: u64(x.timeNs),
      ...taskFromWire(x.task, x.meta),
      durationNs: num(x.durationNs),
      durationFromFork: x.durationFromFork ?? false,
      exitCode: x.exitCode ?? 0,
      signal: x.signal ?? 0,
      coreDumped: x.coreDumped ?? false,
    })),
    fork: b.fork.map((x) => ({
      kind: 'fork',
      timeNs: u64(x.timeNs),
      ...taskFromWire(x.task, x.meta),
      childPid: x.childPid ?? 0,
      childTgid: x.childTgid ?? 0,
    })),
    tcp: b.tcp.map((x, i) =>
      withMeta<Decoded<TcpEvent>>(
        {
          kind: 'tcp',
          timeNs: u64(x.timeNs),
          tcp: named(x.kind, TCP_KIND.name(x.kind), `tcp[${i}].kind`, 'connect'),
          role: named(x.role, TCP_ROLE.name(x.role), `tcp[${i}].role`, 'active'),
          cgroupId: num(x.cgroupId),
          sockId: num(x.sockId),
          pid: x.pid ?? 0,
          comm: x.comm ?? '',
          netnsIno: num(x.netnsIno),
          family: x.ipFamily === 6 ? 6 : 4,
          saddr: x.saddr ?? '',
          daddr: x.daddr ?? '',
          sport: x.sport ?? 0,
          dport: x.dport ?? 0,
          durationNs: num(x.durationNs),
          bytesSent: num(x.bytesSent),
          bytesReceived: num(x.bytesReceived),
        },
        x.meta,
      ),
    ),
    traffic: b.traffic.map((x, i) =>
      withMeta<Decoded<TrafficDelta>>(
        {
          kind: 'traffic',
          timeNs: u64(x.timeNs),
          intervalNs: num(x.intervalNs),
          cgroupId: num(x.cgroupId),
          direction: named(
            x.direction,
            DIRECTION.name(x.direction),
            `traffic[${i}].direction`,
            'egress',
          ),
          protocol: x.protocol ?? 0,
          family: x.ipFamily === 6 ? 6 : 4,
          remoteAddr: x.remoteAddr ?? '',
          remotePort: x.remotePort ?? 0,
          localPort: x.localPort ?? 0,
          packets: num(x.packets),
          bytes: num(x.bytes),
        },
        x.meta,
      ),
    ),
    syscall: b.syscall.map((x) => ({
      kind: 'syscall',
      timeNs: u64(x.timeNs),
      ...taskFromWire(x.task, x.meta),
      syscallNr: x.syscallNr ?? 0,
      syscall: x.syscall ?? '',
      args: (x.args ?? []).map((a) => (typeof a === 'number' ? BigInt(a) : a.toBigInt())),
      strings: (x.strings ?? []).map((s) => ({ arg: s.arg ?? 0, value: s.value ?? '' })),
    })),
    syscallCount: b.syscallCount.map((x) =>
      withMeta<Decoded<SyscallCountDelta>>(
        {
          kind: 'syscall_count',
          timeNs: u64(x.timeNs),
          intervalNs: num(x.intervalNs),
          cgroupId: num(x.cgroupId),
          syscallNr: x.syscallNr ?? 0,
          syscall: x.syscall ?? '',
          count: num(x.count),
        },
        x.meta,
      ),
    ),
    drops: b.drops.map((x, i) =>
      withMeta<Decoded<WireDrops>>(
        {
          kind: 'drops',
          timeNs: u64(x.timeNs),
          family: named(x.family, FAMILY.name(x.family), `drops[${i}].family`, 'exec'),
          reason: named(x.reason, REASON.name(x.reason), `drops[${i}].reason`, 'buffer_full'),
          count: num(x.count),
          // Absent unless a publisher reported skipped batches (decoders fill an absent 0).
          ...(x.batches != null && num(x.batches) > 0 ? { batches: num(x.batches) } : {}),
        },
        x.meta,
      ),
    ),
    file: b.file.map((x) => ({
      kind: 'file',
      timeNs: u64(x.timeNs),
      ...taskFromWire(x.task, x.meta),
      path: x.path ?? '',
      access: FILE_ACCESS.name(x.access) ?? 'read',
      op: FILE_OP.name(x.op) ?? 'open',
      directory: x.directory ?? false,
      pathTruncated: x.pathTruncated ?? false,
      count: num(x.count),
      repeat: x.repeat ?? false,
    })),
  }
}
