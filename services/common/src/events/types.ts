// Decoded kernel events: the shapes every later stage (enrichment, protobuf, store) receives.
//
// Numbers: boot-time timestamps, cgroup ids and byte counts are u64 in the kernel and plain
// numbers here. They are exact below 2^53: for CLOCK_BOOTTIME that is 104 days of uptime,
// after which a timestamp is still right to a few nanoseconds. Raw syscall arguments carry
// pointers and use bigint.

import type { pb } from '@ebbflow/proto'

export type Family = 'exec' | 'net' | 'syscall' | 'file'
export const FAMILIES: readonly Family[] = ['exec', 'net', 'syscall', 'file']
/**
 * Families captured when none are named. `file` is opt-in for now: it adds a record per new
 * (cgroup, file, access), which every other suite and benchmark would otherwise carry.
 */
export const DEFAULT_FAMILIES: readonly Family[] = ['exec', 'net', 'syscall']

/**
 * Who caused an event, added by the collector's enrichment stage (absent before it): the
 * proto's `Metadata` message is its one definition (field docs there), this type follows from
 * the generated declarations. Fields are absent when unknown: host mode has no pod fields; a
 * process outside any container has `systemdUnit` instead of a container.
 */
export type EventMeta = { node: string } & {
  [K in Exclude<keyof WireMetadata, 'node'>]?: NonNullable<WireMetadata[K]>
}
type WireMetadata = pb.v1.Metadata.$Properties

/** The task an event happened in. */
export interface TaskFields {
  /** cgroup v2 id: the inode number of the cgroup's directory. */
  cgroupId: number
  pid: number
  tgid: number
  ppid: number
  uid: number
  gid: number
  pidnsIno: number
  mntnsIno: number
  comm: string
  meta?: EventMeta
}

export interface ExecEvent extends TaskFields {
  kind: 'exec'
  bootNs: number
  parentComm: string
  filename: string
  args: string[]
  /** Bytes argv had in the process; more than were kept when argsTruncated. */
  argsTotalBytes: number
  argsTruncated: boolean
  filenameTruncated: boolean
  argsReadFailed: boolean
  /** Read from /proc at collector start rather than captured at exec (see proto Exec). */
  seenAtStart?: true
}

export interface ExitEvent extends TaskFields {
  kind: 'exit'
  bootNs: number
  durationNs: number
  /** Measured from fork: the exec happened before capture started (or was not seen). */
  durationFromFork: boolean
  exitCode: number
  signal: number
  coreDumped: boolean
}

export interface ForkEvent extends TaskFields {
  kind: 'fork'
  bootNs: number
  childPid: number
  childTgid: number
}

export type TcpKind = 'connect' | 'accept' | 'close' | 'connect_failed'

export interface TcpEvent {
  kind: 'tcp'
  bootNs: number
  tcp: TcpKind
  role: 'active' | 'passive'
  /**
   * The owner's cgroup: the connecting process's, or the accepting process's for a passive
   * socket (the listener's when it closed before any accept).
   */
  cgroupId: number
  sockId: number
  /**
   * The process that called connect(), or accept()/accept4() for a passive socket (taken
   * when the call returns); 0 for a passive socket that closed before any process took it.
   */
  pid: number
  /** The owner thread's comm, from the same call as `pid`; empty when pid is 0. */
  comm: string
  netnsIno: number
  family: 4 | 6
  saddr: string
  daddr: string
  sport: number
  dport: number
  durationNs: number
  bytesSent: number
  bytesReceived: number
  meta?: EventMeta
}

export interface SyscallEvent extends TaskFields {
  kind: 'syscall'
  bootNs: number
  syscallNr: number
  syscall: string
  args: bigint[]
  /** User strings copied for this syscall's path-like arguments (by argument index). */
  strings: { arg: number; value: string }[]
}

export type FileAccessKind = 'read' | 'write' | 'exec' | 'create' | 'remove' | 'truncate'
export const FILE_ACCESS_KINDS: readonly FileAccessKind[] = [
  'read',
  'write',
  'exec',
  'create',
  'remove',
  'truncate',
]
export type FileOp = 'open' | 'exec' | 'unlink' | 'rmdir' | 'mkdir' | 'rename' | 'truncate'
export const FILE_OPS: readonly FileOp[] = [
  'open',
  'exec',
  'unlink',
  'rmdir',
  'mkdir',
  'rename',
  'truncate',
]

/**
 * One access kind of one file by one cgroup (proto `FileAccess`): the first in a dedup
 * window, or (`repeat`) how many more the kernel counted since the collector last read.
 */
export interface FileEvent extends TaskFields {
  kind: 'file'
  bootNs: number
  /** Absolute, as the task sees it (relative to its root, so a container's own view). */
  path: string
  access: FileAccessKind
  op: FileOp
  directory: boolean
  pathTruncated: boolean
  /** Accesses this record stands for: 1 for a sighting, the repeats counted for a repeat. */
  count: number
  repeat: boolean
  /** The kernel's dedup key (latin1 bytes): pairs repeats with their sighting. Collector only. */
  key?: string
}

export type RecordEvent = ExecEvent | ExitEvent | ForkEvent | TcpEvent | SyscallEvent | FileEvent

/** In-kernel counters, read as deltas over one interval. */
export interface SyscallCountDelta {
  kind: 'syscall_count'
  bootNs: number
  intervalNs: number
  cgroupId: number
  syscallNr: number
  syscall: string
  count: number
  meta?: EventMeta
}

export interface TrafficDelta {
  kind: 'traffic'
  bootNs: number
  intervalNs: number
  cgroupId: number
  direction: 'ingress' | 'egress'
  protocol: number
  family: 4 | 6
  remoteAddr: string
  remotePort: number
  localPort: number
  packets: number
  bytes: number
  meta?: EventMeta
}

export type DropReason = 'buffer_full' | 'map_full' | 'read_failed'

/** Records or counter updates the kernel side could not keep, per family and reason. */
export interface DropDelta {
  kind: 'drops'
  bootNs: number
  family: Family
  reason: DropReason
  count: number
  meta?: EventMeta
}

export type CounterEvent = SyscallCountDelta | TrafficDelta | DropDelta
export type CapturedEvent = RecordEvent | CounterEvent
