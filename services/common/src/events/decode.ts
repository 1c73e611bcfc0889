// Decodes the batches the native addon hands over: records framed as
// [u32 size][size bytes][zero padding to 8], each record starting with ebf_event_header.
// Offsets come from layout.generated.ts (BTF of the compiled objects), never from here.
//
// The hot path never throws: a record it cannot decode is counted by reason and skipped.
import {
  DROP_REASON,
  EVENT_TYPE,
  EXEC_FLAGS,
  EXIT_FLAGS,
  FILE_ACCESS,
  FILE_FLAGS,
  FILE_OP,
  LAYOUTS,
  TCP_KIND,
  TCP_ROLE,
} from './layout.generated.ts'
import { syscallName } from './syscalls.ts'
import type {
  DropReason,
  ExecEvent,
  ExitEvent,
  FileAccessKind,
  FileEvent,
  FileOp,
  ForkEvent,
  RecordEvent,
  SyscallEvent,
  TcpEvent,
  TcpKind,
} from './types.ts'

export type DecodeErrorReason = 'bad_frame' | 'short_record' | 'unknown_type' | 'unknown_version'

/** Counts of records skipped, by reason (the `decode_errors{reason}` metric). */
export type DecodeErrors = Record<DecodeErrorReason, number>

export function newDecodeErrors(): DecodeErrors {
  return { bad_frame: 0, short_record: 0, unknown_type: 0, unknown_version: 0 }
}

const HDR = LAYOUTS.ebf_event_header
const H_TYPE = HDR.fields.type.offset
const H_VERSION = HDR.fields.version.offset
const H_SIZE = HDR.fields.size.offset
const H_TS = HDR.fields.timestamp_ns.offset

// Each decoder writes the task's fields into its event's literal rather than spreading a task
// object into it: the spread copied property by property and cost as much as the rest of a
// syscall record's decoding (bench/decode: 1.3 M/s with it, 2.5-2.8 M/s without).
const TASK = LAYOUTS.ebf_task.fields
const EXEC = LAYOUTS.ebf_exec_event_v1
const EXIT = LAYOUTS.ebf_exit_event_v1
const FORK = LAYOUTS.ebf_fork_event_v1
const TCP = LAYOUTS.ebf_tcp_event_v1
const SYSCALL = LAYOUTS.ebf_syscall_event_v1
const FILE = LAYOUTS.ebf_file_event_v1
const FILE_PATH_OFFSET = FILE.fields.path.offset
const FILE_KEY = LAYOUTS.ebf_file_key
const EXEC_ARGS_OFFSET = EXEC.fields.args.offset
const TWO_32 = 2 ** 32

function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO_32 + view.getUint32(at, true)
}

/** A NUL-terminated string inside a fixed array. */
function cString(buf: Buffer, start: number, size: number): string {
  let end = buf.indexOf(0, start)
  if (end < 0 || end > start + size) end = start + size
  return buf.toString('utf8', start, end)
}

// One utf8 decode for the whole argv block, then a split: several times faster than one
// decode per argument for typical command lines. Also splits argv read from /proc/PID/cmdline,
// so a process seen at start has its arguments cut exactly as a captured exec's.
export function splitArgs(buf: Buffer, start: number, size: number): string[] {
  if (size === 0) return []
  const end = buf[start + size - 1] === 0 ? start + size - 1 : start + size
  return buf.toString('utf8', start, end).split('\0')
}

function decodeExec(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
): ExecEvent | undefined {
  if (size < EXEC_ARGS_OFFSET) return undefined
  const argsSize = view.getUint32(at + EXEC.fields.args_size.offset, true)
  if (EXEC_ARGS_OFFSET + argsSize > size) return undefined
  const flags = view.getUint32(at + EXEC.fields.flags.offset, true)
  const t = at + EXEC.fields.task.offset
  return {
    kind: 'exec',
    bootNs,
    cgroupId: u64(view, t + TASK.cgroup_id.offset),
    pid: view.getUint32(t + TASK.pid.offset, true),
    tgid: view.getUint32(t + TASK.tgid.offset, true),
    ppid: view.getUint32(t + TASK.ppid.offset, true),
    uid: view.getUint32(t + TASK.uid.offset, true),
    gid: view.getUint32(t + TASK.gid.offset, true),
    pidnsIno: view.getUint32(t + TASK.pidns_ino.offset, true),
    mntnsIno: view.getUint32(t + TASK.mntns_ino.offset, true),
    comm: cString(buf, t + TASK.comm.offset, TASK.comm.size),
    parentComm: cString(buf, at + EXEC.fields.parent_comm.offset, EXEC.fields.parent_comm.size),
    filename: cString(buf, at + EXEC.fields.filename.offset, EXEC.fields.filename.size),
    args: splitArgs(buf, at + EXEC_ARGS_OFFSET, argsSize),
    argsTotalBytes: view.getUint32(at + EXEC.fields.args_total.offset, true),
    argsTruncated: (flags & EXEC_FLAGS.ARGS_TRUNCATED) !== 0,
    filenameTruncated: (flags & EXEC_FLAGS.FILENAME_TRUNCATED) !== 0,
    argsReadFailed: (flags & EXEC_FLAGS.ARGS_READ_FAILED) !== 0,
  }
}

function decodeExit(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
): ExitEvent | undefined {
  if (size < EXIT.size) return undefined
  const flags = view.getUint32(at + EXIT.fields.flags.offset, true)
  const t = at + EXIT.fields.task.offset
  return {
    kind: 'exit',
    bootNs,
    cgroupId: u64(view, t + TASK.cgroup_id.offset),
    pid: view.getUint32(t + TASK.pid.offset, true),
    tgid: view.getUint32(t + TASK.tgid.offset, true),
    ppid: view.getUint32(t + TASK.ppid.offset, true),
    uid: view.getUint32(t + TASK.uid.offset, true),
    gid: view.getUint32(t + TASK.gid.offset, true),
    pidnsIno: view.getUint32(t + TASK.pidns_ino.offset, true),
    mntnsIno: view.getUint32(t + TASK.mntns_ino.offset, true),
    comm: cString(buf, t + TASK.comm.offset, TASK.comm.size),
    durationNs: u64(view, at + EXIT.fields.duration_ns.offset),
    durationFromFork: (flags & EXIT_FLAGS.DURATION_FROM_FORK) !== 0,
    exitCode: view.getUint32(at + EXIT.fields.exit_code.offset, true),
    signal: view.getUint32(at + EXIT.fields.signal.offset, true),
    coreDumped: (flags & EXIT_FLAGS.CORE_DUMPED) !== 0,
  }
}

function decodeFork(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
): ForkEvent | undefined {
  if (size < FORK.size) return undefined
  const t = at + FORK.fields.task.offset
  return {
    kind: 'fork',
    bootNs,
    cgroupId: u64(view, t + TASK.cgroup_id.offset),
    pid: view.getUint32(t + TASK.pid.offset, true),
    tgid: view.getUint32(t + TASK.tgid.offset, true),
    ppid: view.getUint32(t + TASK.ppid.offset, true),
    uid: view.getUint32(t + TASK.uid.offset, true),
    gid: view.getUint32(t + TASK.gid.offset, true),
    pidnsIno: view.getUint32(t + TASK.pidns_ino.offset, true),
    mntnsIno: view.getUint32(t + TASK.mntns_ino.offset, true),
    comm: cString(buf, t + TASK.comm.offset, TASK.comm.size),
    childPid: view.getUint32(at + FORK.fields.child_pid.offset, true),
    childTgid: view.getUint32(at + FORK.fields.child_tgid.offset, true),
  }
}

const TCP_KINDS: Record<number, TcpKind> = {
  [TCP_KIND.CONNECT]: 'connect',
  [TCP_KIND.ACCEPT]: 'accept',
  [TCP_KIND.CLOSE]: 'close',
  [TCP_KIND.CONNECT_FAILED]: 'connect_failed',
}
const AF_INET = 2

export function formatAddress(buf: Buffer, at: number, family: 4 | 6): string {
  if (family === 4) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((buf[at + i]! << 8) | buf[at + i + 1]!)
  // IPv4-mapped addresses read best in their IPv4 form.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`
  }
  // RFC 5952: the longest run (two or more) of zero groups becomes "::".
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

function decodeTcp(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
): TcpEvent | undefined {
  if (size < TCP.size) return undefined
  const f = TCP.fields
  const family = view.getUint16(at + f.family.offset, true) === AF_INET ? 4 : 6
  const tcp = TCP_KINDS[buf[at + f.kind.offset]!]
  if (!tcp) return undefined
  return {
    kind: 'tcp',
    bootNs,
    tcp,
    role: buf[at + f.role.offset] === TCP_ROLE.PASSIVE ? 'passive' : 'active',
    cgroupId: u64(view, at + f.cgroup_id.offset),
    sockId: u64(view, at + f.sock_id.offset),
    pid: view.getUint32(at + f.pid.offset, true),
    comm: cString(buf, at + f.comm.offset, f.comm.size),
    netnsIno: view.getUint32(at + f.netns_ino.offset, true),
    family,
    saddr: formatAddress(buf, at + f.saddr.offset, family),
    daddr: formatAddress(buf, at + f.daddr.offset, family),
    sport: view.getUint16(at + f.sport.offset, true),
    dport: view.getUint16(at + f.dport.offset, true),
    durationNs: u64(view, at + f.duration_ns.offset),
    bytesSent: u64(view, at + f.bytes_sent.offset),
    bytesReceived: u64(view, at + f.bytes_received.offset),
  }
}

const STR_LEN = SYSCALL.fields.str.size / 2

function decodeSyscall(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
  stringArgs: (nr: number) => readonly number[],
): SyscallEvent | undefined {
  if (size < SYSCALL.size) return undefined
  const f = SYSCALL.fields
  const syscallNr = view.getUint32(at + f.syscall_nr.offset, true)
  const args: bigint[] = []
  for (let i = 0; i < 6; i++) args.push(view.getBigUint64(at + f.args.offset + i * 8, true))
  const strings: { arg: number; value: string }[] = []
  const which = stringArgs(syscallNr)
  for (let slot = 0; slot < 2; slot++) {
    const n = view.getUint16(at + f.str_size.offset + slot * 2, true)
    const arg = which[slot]
    if (n > 0 && arg !== undefined) {
      strings.push({
        arg,
        value: cString(buf, at + f.str.offset + slot * STR_LEN, Math.min(n, STR_LEN)),
      })
    }
  }
  const t = at + f.task.offset
  return {
    kind: 'syscall',
    bootNs,
    cgroupId: u64(view, t + TASK.cgroup_id.offset),
    pid: view.getUint32(t + TASK.pid.offset, true),
    tgid: view.getUint32(t + TASK.tgid.offset, true),
    ppid: view.getUint32(t + TASK.ppid.offset, true),
    uid: view.getUint32(t + TASK.uid.offset, true),
    gid: view.getUint32(t + TASK.gid.offset, true),
    pidnsIno: view.getUint32(t + TASK.pidns_ino.offset, true),
    mntnsIno: view.getUint32(t + TASK.mntns_ino.offset, true),
    comm: cString(buf, t + TASK.comm.offset, TASK.comm.size),
    syscallNr,
    syscall: syscallName(syscallNr),
    args,
    strings,
  }
}

const FILE_ACCESSES: Record<number, FileAccessKind> = {
  [FILE_ACCESS.READ]: 'read',
  [FILE_ACCESS.WRITE]: 'write',
  [FILE_ACCESS.EXEC]: 'exec',
  [FILE_ACCESS.CREATE]: 'create',
  [FILE_ACCESS.REMOVE]: 'remove',
  [FILE_ACCESS.TRUNCATE]: 'truncate',
}
const FILE_OPS: Record<number, FileOp> = {
  [FILE_OP.OPEN]: 'open',
  [FILE_OP.EXEC]: 'exec',
  [FILE_OP.UNLINK]: 'unlink',
  [FILE_OP.RMDIR]: 'rmdir',
  [FILE_OP.MKDIR]: 'mkdir',
  [FILE_OP.RENAME]: 'rename',
  [FILE_OP.TRUNCATE]: 'truncate',
}

/**
 * A joined path (directory + the name a call passed) as written: "." and ".." resolved
 * lexically and repeated slashes folded, as the kernel resolved them (symlinks aside).
 */
export function normalizePath(path: string): string {
  const out: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') out.pop()
    else out.push(part)
  }
  return `/${out.join('/')}`
}

function decodeFile(
  buf: Buffer,
  view: DataView,
  at: number,
  size: number,
  bootNs: number,
): FileEvent | undefined {
  if (size < FILE_PATH_OFFSET) return undefined
  const f = FILE.fields
  const pathSize = view.getUint16(at + f.path_size.offset, true)
  if (pathSize === 0 || FILE_PATH_OFFSET + pathSize > size) return undefined
  const access = FILE_ACCESSES[buf[at + f.access.offset]!]
  const op = FILE_OPS[buf[at + f.op.offset]!]
  if (!access || !op) return undefined
  const flags = view.getUint32(at + f.flags.offset, true)
  const raw = cString(buf, at + FILE_PATH_OFFSET, pathSize)
  const key = at + f.key.offset
  const t = at + f.task.offset
  return {
    kind: 'file',
    bootNs,
    cgroupId: u64(view, t + TASK.cgroup_id.offset),
    pid: view.getUint32(t + TASK.pid.offset, true),
    tgid: view.getUint32(t + TASK.tgid.offset, true),
    ppid: view.getUint32(t + TASK.ppid.offset, true),
    uid: view.getUint32(t + TASK.uid.offset, true),
    gid: view.getUint32(t + TASK.gid.offset, true),
    pidnsIno: view.getUint32(t + TASK.pidns_ino.offset, true),
    mntnsIno: view.getUint32(t + TASK.mntns_ino.offset, true),
    comm: cString(buf, t + TASK.comm.offset, TASK.comm.size),
    path: (flags & FILE_FLAGS.PATH_JOINED) !== 0 ? normalizePath(raw) : raw,
    access,
    op,
    directory: (flags & FILE_FLAGS.DIRECTORY) !== 0,
    pathTruncated: (flags & FILE_FLAGS.PATH_TRUNCATED) !== 0,
    count: 1,
    repeat: false,
    key: buf.toString('latin1', key, key + FILE_KEY.size),
  }
}

export interface DecodeOptions {
  /** For syscall records: which argument indexes the kernel copied as strings. */
  stringArgs?: (nr: number) => readonly number[]
  /**
   * Offered each well-framed syscall record before it is decoded: true when it took the record
   * from the batch's bytes itself (it is counted as decoded and not appended to `out`).
   */
  takeSyscall?: RawSyscallTaker
}

/** Takes one syscall record from a batch's bytes (see DecodeOptions.takeSyscall). */
export type RawSyscallTaker = (
  batch: Buffer,
  view: DataView,
  at: number,
  bootNs: number,
  stringArgs: (nr: number) => readonly number[],
) => boolean

const noStrings = (): readonly number[] => []

/**
 * Decodes every record of one batch into `out` (appended) and returns how many were decoded.
 * Skipped records are counted in `errors`.
 */
export function decodeBatch(
  batch: Buffer,
  out: RecordEvent[],
  errors: DecodeErrors,
  options: DecodeOptions = {},
): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength)
  const stringArgs = options.stringArgs ?? noStrings
  const take = options.takeSyscall
  const end = batch.byteLength
  let decoded = 0
  let at = 0
  while (at + 4 <= end) {
    const frame = view.getUint32(at, true)
    const rec = at + 4
    if (frame < HDR.size || rec + frame > end) {
      // The framing itself is broken: nothing after this point can be trusted.
      errors.bad_frame++
      break
    }
    at = rec + ((frame + 7) & ~7)
    const size = view.getUint32(rec + H_SIZE, true)
    if (size > frame || size < HDR.size) {
      errors.short_record++
      continue
    }
    const type = view.getUint16(rec + H_TYPE, true)
    const version = view.getUint16(rec + H_VERSION, true)
    const bootNs = u64(view, rec + H_TS)
    let event: RecordEvent | undefined
    if (version !== 1) {
      if (type >= EVENT_TYPE.EXEC && type <= EVENT_TYPE.FILE) errors.unknown_version++
      else errors.unknown_type++
      continue
    }
    switch (type) {
      case EVENT_TYPE.EXEC:
        event = decodeExec(batch, view, rec, size, bootNs)
        break
      case EVENT_TYPE.EXIT:
        event = decodeExit(batch, view, rec, size, bootNs)
        break
      case EVENT_TYPE.FORK:
        event = decodeFork(batch, view, rec, size, bootNs)
        break
      case EVENT_TYPE.TCP:
        event = decodeTcp(batch, view, rec, size, bootNs)
        break
      case EVENT_TYPE.SYSCALL:
        if (take && size >= SYSCALL.size && take(batch, view, rec, bootNs, stringArgs)) {
          decoded++
          continue
        }
        event = decodeSyscall(batch, view, rec, size, bootNs, stringArgs)
        break
      case EVENT_TYPE.FILE:
        event = decodeFile(batch, view, rec, size, bootNs)
        break
      default:
        errors.unknown_type++
        continue
    }
    if (event) {
      out.push(event)
      decoded++
    } else {
      errors.short_record++
    }
  }
  return decoded
}

export const DROP_REASONS: Record<number, DropReason> = {
  [DROP_REASON.BUFFER_FULL]: 'buffer_full',
  [DROP_REASON.MAP_FULL]: 'map_full',
  [DROP_REASON.READ_FAILED]: 'read_failed',
}
