// Processes that were running before the collector: the kernel capture sees execs only from
// its attach on, so right after attaching /proc is read once and every process already there
// gets an exec event marked `seenAtStart`, carrying what a captured exec carries (filename from
// the exe link, argv from cmdline cut at the same bound, task fields, cgroup id) and, as its
// time, the process's start (fork) time. The same idea as Tetragon's procfs reader.
//
// A process that exec'd between the attach and the read would be told twice (captured, and
// read with its new image): StartScanDedup drops the captured exec that the read already told.
import {
  closeSync,
  type Dirent,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
} from 'node:fs'
import { endianness } from 'node:os'
import { join } from 'node:path'
import {
  type CounterEvent,
  cgroupId,
  type ExecEvent,
  type Family,
  LIMITS,
  type RecordEvent,
  splitArgs,
} from '@ebbflow/common'
import type { CaptureSink } from './capture.ts'

/** task->flags bit of a kernel thread (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000
/** getauxval(AT_CLKTCK): the unit of /proc/PID/stat's times (sysconf(_SC_CLK_TCK)). */
const AT_CLKTCK = 17n

/** The fields of /proc/PID/stat this reader uses. */
export interface ProcStat {
  comm: string
  /** R, S, D, Z, X… */
  state: string
  ppid: number
  /** task->flags. */
  flags: number
  /** Start time in clock ticks since boot. */
  startTicks: number
}

/**
 * Parses /proc/PID/stat. comm is between the first "(" and the last ")": it may itself hold
 * spaces and parentheses (a process can name itself anything up to 15 bytes).
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  // Fields from the third (state) on; field N of proc(5) is rest[N - 3].
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  if (rest.length < 20) return undefined
  const ppid = Number(rest[1])
  const flags = Number(rest[6])
  const startTicks = Number(rest[19])
  if (!Number.isInteger(ppid) || !Number.isInteger(flags) || !Number.isInteger(startTicks))
    return undefined
  return { comm: text.slice(open + 1, close), state: rest[0]!, ppid, flags, startTicks }
}

export interface ProcStatus {
  /** Real uid and gid (what the kernel records carry: cred->uid, cred->gid). */
  uid: number
  gid: number
  /** The process is the init (pid 1) of a pid namespace below the reader's. */
  pidnsInit: boolean
}

/** Parses the Uid, Gid and NSpid lines of /proc/PID/status. */
export function parseStatus(text: string): ProcStatus | undefined {
  let uid: number | undefined
  let gid: number | undefined
  let pidnsInit = false
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const key = line.slice(0, colon)
    if (key !== 'Uid' && key !== 'Gid' && key !== 'NSpid') continue
    const values = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number)
    if (key === 'Uid') uid = values[0]
    else if (key === 'Gid') gid = values[0]
    // One pid per nesting level, the innermost last.
    else pidnsInit = values.length > 1 && values[values.length - 1] === 1
  }
  if (uid === undefined || gid === undefined || !Number.isInteger(uid) || !Number.isInteger(gid))
    return undefined
  return { uid, gid, pidnsInit }
}

/** The cgroup v2 path (the `0::` line) of /proc/PID/cgroup, below the v2 mount. */
export function parseCgroupV2Path(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::')) return line.slice(3)
  return undefined
}

/** The inode number in a namespace link's target, `pid:[4026531836]`. */
export function parseNsLink(target: string): number {
  const m = /\[(\d+)\]$/.exec(target)
  return m ? Number(m[1]) : 0
}

/** Clock ticks per second of /proc's times, from the auxiliary vector (100 on Linux' ABIs). */
export function clockTicksPerSecond(auxv = '/proc/self/auxv'): number {
  try {
    const b = readFileSync(auxv)
    const le = endianness() === 'LE'
    for (let at = 0; at + 16 <= b.length; at += 16) {
      const type = le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)
      if (type === 0n) break
      if (type === AT_CLKTCK)
        return Number(le ? b.readBigUInt64LE(at + 8) : b.readBigUInt64BE(at + 8))
    }
  } catch {
    // Unreadable auxv: USER_HZ, which is 100 on every architecture Node runs on.
  }
  return 100
}

/** What session tracking needs of a process: its place in the tree and in its pid namespace. */
export interface ProcessInfo {
  tgid: number
  ppid: number
  startTicks: number
  pidnsInit: boolean
  cgroupId: number
}

/** A process's tree fields read live (for a container first seen after the start). */
export function readProcessInfo(
  tgid: number,
  procRoot = '/proc',
): Omit<ProcessInfo, 'cgroupId'> | undefined {
  try {
    const stat = parseStat(readFileSync(join(procRoot, String(tgid), 'stat'), 'utf8'))
    const status = parseStatus(readFileSync(join(procRoot, String(tgid), 'status'), 'utf8'))
    if (!stat || !status) return undefined
    return { tgid, ppid: stat.ppid, startTicks: stat.startTicks, pidnsInit: status.pidnsInit }
  } catch {
    return undefined // gone meanwhile
  }
}

export interface ProcScanOptions {
  /** Default: /proc. */
  procRoot?: string
  /** The cgroup v2 mount (cgroup ids are the inodes of its directories). */
  cgroupRoot: string
  /** argv bytes kept per process, as for captured execs (at most LIMITS.ARGS_CAP). */
  argsMax: number
  /** Most processes read; the rest are counted as left out. */
  maxProcesses: number
  /** Not reported (the collector itself, as the kernel programs skip it). */
  selfPid?: number
  /** CLOCK_BOOTTIME in ns, the clock of captured events. */
  now: () => number
  /** Default: from the auxiliary vector. */
  ticksPerSecond?: number
}

export interface ProcScanStats {
  /** Processes reported. */
  processes: number
  /** Kernel threads: not processes anything exec'd, skipped. */
  kernelThreads: number
  /** Zombies: their exit happened already; skipped. */
  zombies: number
  /** Gone between the directory listing and reading them; skipped. */
  vanished: number
  /** Its stat, status or cgroup file could not be read (other than gone); skipped. */
  unreadable: number
  /** Past maxProcesses. */
  leftOut: number
  durationMs: number
}

export interface ProcScan {
  /** Oldest first. */
  events: ExecEvent[]
  processes: ProcessInfo[]
  /** tgid → CLOCK_BOOTTIME once its files were read: a captured exec before that is the one read. */
  readAt: Map<number, number>
  /** CLOCK_BOOTTIME when the scan ended. */
  endNs: number
  stats: ProcScanStats
}

const SCRATCH = Buffer.allocUnsafe(64 * 1024)

/** Reads cmdline, keeping `keep` bytes and counting them all (argv can be megabytes). */
function readCmdline(path: string, keep: number): { kept: Buffer; total: number } {
  const fd = openSync(path, 'r')
  try {
    const kept = Buffer.alloc(keep)
    let total = 0
    while (total < keep) {
      const n = readSync(fd, kept, total, keep - total, null)
      if (n === 0) return { kept: kept.subarray(0, total), total }
      total += n
    }
    for (;;) {
      const n = readSync(fd, SCRATCH, 0, SCRATCH.length, null)
      if (n === 0) break
      total += n
    }
    return { kept, total }
  } finally {
    closeSync(fd)
  }
}

/** A path above the reader's cgroup namespace root ("/../../kubepods/…"). */
function isOutsideNamespace(path: string): boolean {
  return path === '/..' || path.startsWith('/../')
}

/** tgid → cgroup id, from every cgroup.procs below the v2 mount. */
export function procsIndex(cgroupRoot: string, maxDepth = 16): Map<number, number> {
  const out = new Map<number, number>()
  const walk = (dir: string, depth: number) => {
    let id: number
    let entries: Dirent[]
    try {
      id = cgroupId(dir)
      entries = readdirSync(dir, { withFileTypes: true })
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line !== '') out.set(Number(line), id)
      }
    } catch {
      return // removed while walking
    }
    if (depth >= maxDepth) return
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name), depth + 1)
  }
  walk(cgroupRoot, 0)
  return out
}

function readlinkOr(path: string, fallback: string): string {
  try {
    return readlinkSync(path)
  } catch {
    return fallback
  }
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ESRCH'
}

/** Reads every process in `procRoot` once. Never throws for a process that is gone or odd
 * (only when `procRoot` itself cannot be listed). */
export function scanProcfs(options: ProcScanOptions): ProcScan {
  const started = performance.now()
  const procRoot = options.procRoot ?? '/proc'
  const hz = options.ticksPerSecond ?? clockTicksPerSecond()
  const nsPerTick = 1e9 / hz
  const keep = Math.min(options.argsMax, LIMITS.ARGS_CAP)
  const stats: ProcScanStats = {
    processes: 0,
    kernelThreads: 0,
    zombies: 0,
    vanished: 0,
    unreadable: 0,
    leftOut: 0,
    durationMs: 0,
  }
  const tgids = readdirSync(procRoot)
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((tgid) => tgid !== options.selfPid)
    .sort((a, b) => a - b)
  const cgroupIds = new Map<string, number>()
  let byPid: Map<number, number> | undefined
  const comms = new Map<number, string>()
  const read: {
    event: ExecEvent
    info: ProcessInfo
  }[] = []
  const readAt = new Map<number, number>()

  for (const tgid of tgids) {
    if (read.length >= options.maxProcesses) {
      stats.leftOut++
      continue
    }
    const dir = join(procRoot, String(tgid))
    try {
      const stat = parseStat(readFileSync(join(dir, 'stat'), 'utf8'))
      if (!stat) {
        stats.vanished++
        continue
      }
      comms.set(tgid, stat.comm)
      if ((stat.flags & PF_KTHREAD) !== 0) {
        stats.kernelThreads++
        continue
      }
      if (stat.state === 'Z' || stat.state === 'X') {
        stats.zombies++
        continue
      }
      const status = parseStatus(readFileSync(join(dir, 'status'), 'utf8'))
      if (!status) {
        stats.vanished++
        continue
      }
      // exe can be unreadable while the rest is not (a process mid-exit; ptrace access
      // refused by a security module): the process is kept, nameless.
      let filename = readlinkOr(join(dir, 'exe'), '')
      let filenameTruncated = false
      if (Buffer.byteLength(filename) >= LIMITS.FILENAME_LEN) {
        filename = Buffer.from(filename)
          .subarray(0, LIMITS.FILENAME_LEN - 1)
          .toString('utf8')
        filenameTruncated = true
      }
      let args: string[] = []
      let argsTotalBytes = 0
      let argsReadFailed = false
      try {
        const { kept, total } = readCmdline(join(dir, 'cmdline'), keep)
        args = splitArgs(kept, 0, kept.length)
        argsTotalBytes = total
      } catch {
        argsReadFailed = true
      }
      const cgroupPath = parseCgroupV2Path(readFileSync(join(dir, 'cgroup'), 'utf8'))
      let cgroup = 0
      if (cgroupPath !== undefined && isOutsideNamespace(cgroupPath)) {
        // The collector runs in a cgroup namespace of its own (a pod's default): paths are
        // relative to its own cgroup. cgroup.procs files name their processes whatever the
        // namespace, so those are read instead, once, for every process.
        byPid ??= procsIndex(options.cgroupRoot)
        cgroup = byPid.get(tgid) ?? 0
      } else if (cgroupPath !== undefined) {
        const known = cgroupIds.get(cgroupPath)
        if (known !== undefined) cgroup = known
        else {
          try {
            cgroup = cgroupId(join(options.cgroupRoot, cgroupPath))
          } catch {
            // Removed since (its path then ends in " (deleted)"): no id to name it by.
          }
          cgroupIds.set(cgroupPath, cgroup)
        }
      }
      const pidnsIno = parseNsLink(readlinkOr(join(dir, 'ns', 'pid'), ''))
      const mntnsIno = parseNsLink(readlinkOr(join(dir, 'ns', 'mnt'), ''))
      readAt.set(tgid, options.now())
      read.push({
        event: {
          kind: 'exec',
          bootNs: Math.round(stat.startTicks * nsPerTick),
          cgroupId: cgroup,
          pid: tgid,
          tgid,
          ppid: stat.ppid,
          uid: status.uid,
          gid: status.gid,
          pidnsIno,
          mntnsIno,
          comm: stat.comm,
          parentComm: '',
          filename,
          args,
          argsTotalBytes,
          argsTruncated: argsTotalBytes > keep,
          filenameTruncated,
          argsReadFailed,
          seenAtStart: true,
        },
        info: {
          tgid,
          ppid: stat.ppid,
          startTicks: stat.startTicks,
          pidnsInit: status.pidnsInit,
          cgroupId: cgroup,
        },
      })
    } catch (err) {
      if (isGone(err)) stats.vanished++
      else stats.unreadable++
    }
  }
  for (const { event } of read) {
    event.parentComm = comms.get(event.ppid) ?? parentComm(procRoot, event.ppid)
  }
  read.sort((a, b) => a.info.startTicks - b.info.startTicks || a.info.tgid - b.info.tgid)
  stats.processes = read.length
  stats.durationMs = performance.now() - started
  return {
    events: read.map((r) => r.event),
    processes: read.map((r) => r.info),
    readAt,
    endNs: options.now(),
    stats,
  }
}

function parentComm(procRoot: string, ppid: number): string {
  if (ppid === 0) return ''
  try {
    return readFileSync(join(procRoot, String(ppid), 'comm'), 'utf8').replace(/\n$/, '')
  } catch {
    return ''
  }
}

/**
 * In front of the enricher: drops a captured exec that the /proc read already told (the
 * process exec'd after the attach but before its files were read, and the read saw that very
 * image: same argv). An earlier exec in that window (a shell before it exec'd the command) and
 * every exec after the read pass. Lets everything through once captured events are well past
 * the end of the read.
 */
export class StartScanDedup implements CaptureSink {
  private readonly next: CaptureSink
  private told: Map<number, { at: number; args: string }> | undefined
  private horizonNs = 0
  dropped = 0

  constructor(next: CaptureSink) {
    this.next = next
  }

  /** From the scan; `marginNs`: how late after the read a record may still reach userspace. */
  expect(scan: Pick<ProcScan, 'events' | 'readAt' | 'endNs'>, marginNs = 5e9): void {
    const told = new Map<number, { at: number; args: string }>()
    for (const e of scan.events) {
      const at = scan.readAt.get(e.tgid)
      if (at !== undefined) told.set(e.tgid, { at, args: e.args.join('\0') })
    }
    this.told = told
    this.horizonNs = scan.endNs + marginNs
  }

  records(events: RecordEvent[], family: Family): void {
    if (!this.told || family !== 'exec') {
      this.next.records(events, family)
      return
    }
    const out = events.filter((e) => {
      const told = this.told
      if (!told) return true
      if (e.bootNs > this.horizonNs) {
        this.told = undefined
        return true
      }
      if (e.kind !== 'exec') return true
      const t = told.get(e.tgid)
      if (!t || e.bootNs > t.at || e.args.join('\0') !== t.args) return true
      told.delete(e.tgid)
      this.dropped++
      return false
    })
    if (out.length > 0) this.next.records(out, family)
  }

  counters(events: CounterEvent[]): void {
    this.next.counters(events)
  }

  /** Only execs are compared with the read: syscall records pass by. */
  rawSyscalls(): ReturnType<NonNullable<CaptureSink['rawSyscalls']>> {
    return this.next.rawSyscalls?.()
  }
}
