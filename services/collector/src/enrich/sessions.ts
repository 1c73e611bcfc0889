// `kubectl exec` sessions: a process that appears in a container's cgroup while its parent is
// outside the container's process tree (runc exec through containerd-shim, `kubectl debug`
// ephemeral containers) starts a session; every descendant carries its id. The tree is
// followed through the exec family's fork/exec/exit events; a container first seen with
// processes already running is seeded from its cgroup.procs (those count as the container's own:
// a session already open when the collector starts is not recognised).
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { RecordEvent } from '@ebbflow/common'

interface ContainerTree {
  /** tgid → the session it belongs to (null: the container's own processes). */
  members: Map<number, string | null>
}

export interface SessionTrackerOptions {
  /** Most containers followed; the first seen are forgotten first. */
  maxContainers: number
  /** Most processes followed per container. */
  maxProcesses: number
}

export interface SessionTrackerStats {
  containers: number
  sessions: number
}

export class SessionTracker {
  private readonly trees = new Map<number, ContainerTree>()
  private readonly options: SessionTrackerOptions
  private sessions = 0

  constructor(options: SessionTrackerOptions) {
    this.options = options
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
    const session = randomUUID()
    this.sessions++
    this.add(members, event.tgid, session)
    return session
  }

  stats(): SessionTrackerStats {
    return { containers: this.trees.size, sessions: this.sessions }
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
    tree = { members: new Map() }
    try {
      for (const line of readFileSync(procsPath(), 'utf8').split('\n')) {
        const tgid = Number(line)
        if (line !== '' && Number.isInteger(tgid)) tree.members.set(tgid, null)
      }
    } catch {
      // The cgroup is gone already: its tree starts empty.
    }
    this.trees.set(cgroupId, tree)
    if (this.trees.size > this.options.maxContainers) {
      const oldest = this.trees.keys().next().value
      if (oldest !== undefined) this.trees.delete(oldest)
    }
    return tree
  }
}
