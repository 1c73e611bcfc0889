// `kubectl exec` sessions: a process that appears in a container's cgroup while its parent is
// outside the container's process tree (runc exec through containerd-shim, `kubectl debug`
// ephemeral containers) starts a session; every descendant carries its id. The tree is
// followed through the exec family's fork/exec/exit events. A container first seen with
// processes already in it (running before the collector, or before its first event) is seeded
// from their ancestry: its main process (the init of its pid namespace, else the oldest whose
// parent is outside the cgroup) and that one's descendants are the container's own; every other
// process whose parent is outside the cgroup opened a session, which its descendants share.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { RecordEvent } from '@ebbflow/common'
import { type ProcessInfo, readProcessInfo } from '../procfs.ts'

interface ContainerTree {
  /** tgid → the session it belongs to (null: the container's own processes). */
  members: Map<number, string | null>
}

/** What seeding needs of a process already in the cgroup. */
export type SeedProcess = Omit<ProcessInfo, 'cgroupId'>

export interface SessionTrackerOptions {
  /** Most containers followed; the first seen are forgotten first. */
  maxContainers: number
  /** Most processes followed per container. */
  maxProcesses: number
  /** The processes in a cgroup now, from its cgroup.procs. Default: read cgroup.procs and /proc. */
  readProcs?: (procsPath: string) => SeedProcess[]
}

export interface SessionTrackerStats {
  containers: number
  sessions: number
}

/**
 * Who is whose in a cgroup's processes: the container's own (null) or a session id. Pure.
 * `newSession` names each session opened by a process entering from outside.
 */
export function seedMembers(
  procs: readonly SeedProcess[],
  newSession: () => string,
): Map<number, string | null> {
  const byTgid = new Map(procs.map((p) => [p.tgid, p]))
  // A process whose parent is not in the cgroup entered it from outside (or is the main one).
  const roots = procs.filter((p) => !byTgid.has(p.ppid))
  const oldest = (list: readonly SeedProcess[]) =>
    list.reduce<SeedProcess | undefined>(
      (o, p) =>
        !o || p.startTicks < o.startTicks || (p.startTicks === o.startTicks && p.tgid < o.tgid)
          ? p
          : o,
      undefined,
    )
  // The oldest init: a tool in the container may run a pid namespace of its own, later.
  const main = oldest(procs.filter((p) => p.pidnsInit)) ?? oldest(roots)
  const members = new Map<number, string | null>()
  const rootOf = (p: SeedProcess): SeedProcess => {
    let at = p
    // Bounded: a stale read could in principle make a loop of parents.
    for (let i = 0; i < procs.length; i++) {
      if (at === main) return at
      const parent = byTgid.get(at.ppid)
      if (!parent) return at
      at = parent
    }
    return at
  }
  const sessionOfRoot = new Map<number, string | null>()
  for (const p of [...procs].sort((a, b) => a.startTicks - b.startTicks || a.tgid - b.tgid)) {
    const root = rootOf(p)
    let session = sessionOfRoot.get(root.tgid)
    if (session === undefined) {
      session = root === main ? null : newSession()
      sessionOfRoot.set(root.tgid, session)
    }
    members.set(p.tgid, session)
  }
  return members
}

function readProcsLive(procsPath: string): SeedProcess[] {
  const out: SeedProcess[] = []
  let text: string
  try {
    text = readFileSync(procsPath, 'utf8')
  } catch {
    return out // the cgroup is gone already: its tree starts empty
  }
  for (const line of text.split('\n')) {
    const tgid = Number(line)
    if (line === '' || !Number.isInteger(tgid)) continue
    const info = readProcessInfo(tgid)
    if (info) out.push(info)
  }
  return out
}

export class SessionTracker {
  private readonly trees = new Map<number, ContainerTree>()
  private readonly options: Required<SessionTrackerOptions>
  private primed: Map<number, SeedProcess[]> | undefined
  private sessions = 0

  constructor(options: SessionTrackerOptions) {
    this.options = { readProcs: readProcsLive, ...options }
  }

  /**
   * Seeds containers first seen from now on from this snapshot (the /proc read at start) rather
   * than from a fresh read; `undefined` ends it.
   */
  prime(processes: readonly ProcessInfo[] | undefined): void {
    if (!processes) {
      this.primed = undefined
      return
    }
    const primed = new Map<number, SeedProcess[]>()
    for (const p of processes) {
      let list = primed.get(p.cgroupId)
      if (!list) {
        list = []
        primed.set(p.cgroupId, list)
      }
      list.push(p)
    }
    this.primed = primed
  }

  /**
   * Follows one exec-family event from a container's cgroup, in capture order; returns the
   * session id it belongs to, if any. `procsPath` gives the cgroup's cgroup.procs file; it is
   * called only the first time a container is seen (building paths per event costs more than
   * the rest of the lookup).
   */
  observe(event: RecordEvent, cgroupId: number, procsPath: () => string): string | undefined {
    if (event.kind !== 'exec' && event.kind !== 'fork' && event.kind !== 'exit') return undefined
    const tree = this.tree(cgroupId, procsPath)
    const { members } = tree
    if (event.kind === 'fork') {
      const session = members.get(event.tgid)
      // A thread, or a fork by a runtime helper that has joined the cgroup but is not yet a
      // member (runc init forking into the pid namespace): nothing to inherit.
      if (session === undefined || event.childTgid === event.tgid) return session ?? undefined
      this.add(members, event.childTgid, session)
      return session ?? undefined
    }
    if (event.kind === 'exit') {
      // Only the process leaving; the thread exits of a member carry its session too.
      const session = members.get(event.tgid)
      if (event.pid === event.tgid) members.delete(event.tgid)
      return session ?? undefined
    }
    const known = members.get(event.tgid)
    if (known !== undefined) return known ?? undefined
    const parent = members.get(event.ppid)
    if (parent !== undefined) {
      this.add(members, event.tgid, parent)
      return parent ?? undefined
    }
    if (members.size === 0) {
      // The first process of an empty container is its own main process.
      this.add(members, event.tgid, null)
      return undefined
    }
    const session = this.newSession()
    this.add(members, event.tgid, session)
    return session
  }

  stats(): SessionTrackerStats {
    return { containers: this.trees.size, sessions: this.sessions }
  }

  private newSession(): string {
    this.sessions++
    return randomUUID()
  }

  private add(members: Map<number, string | null>, tgid: number, session: string | null): void {
    members.set(tgid, session)
    if (members.size > this.options.maxProcesses) {
      const oldest = members.keys().next().value
      if (oldest !== undefined) members.delete(oldest)
    }
  }

  private tree(cgroupId: number, procsPath: () => string): ContainerTree {
    let tree = this.trees.get(cgroupId)
    if (tree) return tree
    const procs = this.primed?.get(cgroupId) ?? this.options.readProcs(procsPath())
    tree = { members: seedMembers(procs, () => this.newSession()) }
    this.trees.set(cgroupId, tree)
    if (this.trees.size > this.options.maxContainers) {
      const oldest = this.trees.keys().next().value
      if (oldest !== undefined) this.trees.delete(oldest)
    }
    return tree
  }
}
