// The enrichment stage: a CaptureSink in front of another. Every event gets a `meta` naming
// the node and, through its cgroup, the container, pod, workload and function (or, on the
// host, the systemd unit). An event whose pod is not known yet (kubelet posts container ids a
// moment after the container starts) is held up to lateMetadataMs and resolved again; past that
// it goes out with what is known and `unresolved`. Held events leave in a later batch than
// their neighbours: order across events is given by bootNs, not by position.

import { join } from 'node:path'
import {
  type CounterEvent,
  type EventMeta,
  type ExecEvent,
  type Family,
  findCgroup2Mount,
  LAYOUTS,
  type Logger,
  type RawSyscallTaker,
  type RecordEvent,
} from '@ebbflow/common'
import type { CaptureSink } from '../capture.ts'
import type { ProcessInfo } from '../procfs.ts'
import { CgroupPathCache } from './cgroup-path.ts'
import { type EnrichConfig, inCluster } from './config.ts'
import { inClusterAccess, type KubeAccess, KubeClient, loadKubeconfig } from './kube-client.ts'
import { PodIndex, PodWatcher } from './pods.ts'
import { SessionTracker } from './sessions.ts'

type AnyEvent = RecordEvent | CounterEvent

const RAW_CGROUP_ID = LAYOUTS.ebf_syscall_event_v1.fields['task.cgroup_id'].offset

interface Resolution {
  meta: Readonly<EventMeta>
  /** The same with `unresolved: true`, made once. */
  unresolvedMeta: Readonly<EventMeta>
  complete: boolean
  version: number
  /** The wait ran out once for this cgroup: later events go out at once with what is known. */
  gaveUp: boolean
}

interface Held {
  event: AnyEvent
  /** undefined for counter events. */
  family: Family | undefined
  cgroupId: number
  deadline: number
  session: string | undefined
}

export interface EnricherOptions {
  node: string
  cgroups: CgroupPathCache
  /** Absent in host mode. */
  pods?: PodIndex
  /** Follows exec sessions in containers; absent: no `session` on events. */
  sessions?: SessionTracker
  lateMetadataMs: number
  maxPendingEvents: number
  /** Most cgroups whose resolution is cached. */
  maxCachedCgroups: number
  /** How often held events are resolved again. Default: 100 ms. */
  retryIntervalMs?: number
  now?: () => number
}

export interface EnricherStats {
  events: number
  held: number
  resolvedLate: number
  sentUnresolved: number
  pending: number
}

export class Enricher implements CaptureSink {
  private readonly next: CaptureSink
  private readonly options: Required<Omit<EnricherOptions, 'pods' | 'sessions'>>
  private readonly pods: PodIndex | undefined
  private readonly sessions: SessionTracker | undefined
  private readonly cache = new Map<number, Resolution>()
  private readonly nodeMeta: Readonly<EventMeta>
  private pending: Held[] = []
  private timer: NodeJS.Timeout | undefined
  private retryQueued = false
  private stopped = false
  private readonly stats_ = { events: 0, held: 0, resolvedLate: 0, sentUnresolved: 0 }

  constructor(next: CaptureSink, options: EnricherOptions) {
    this.next = next
    this.pods = options.pods
    this.sessions = options.sessions
    this.options = { retryIntervalMs: 100, now: () => performance.now(), ...options }
    this.nodeMeta = Object.freeze({ node: options.node })
  }

  records(events: RecordEvent[], family: Family): void {
    const out = this.enrich(events, family)
    if (out.length > 0) this.next.records(out as RecordEvent[], family)
  }

  /**
   * The exec events of processes read from /proc at start, oldest first: enriched like captured
   * ones, their sessions taken from `processes` (the same read) rather than from a fresh one.
   */
  seenAtStart(events: ExecEvent[], processes: readonly ProcessInfo[]): void {
    this.sessions?.prime(processes)
    try {
      this.records(events, 'exec')
    } finally {
      this.sessions?.prime(undefined)
    }
  }

  /**
   * Syscall records of cgroups whose meta is settled (resolved, or sent without waiting as
   * enrich() would) go from the ring's bytes to the next stage's writer; the others are
   * decoded and take enrich()'s path (held while their metadata is awaited). No sessions: they
   * follow execs only.
   */
  rawSyscalls(): RawSyscallTaker | undefined {
    const write = this.next.rawSyscallWriter?.()
    if (!write) return undefined
    return (batch, view, at, bootNs, stringArgs) => {
      const t = at + RAW_CGROUP_ID
      const cgroupId = view.getUint32(t + 4, true) * 2 ** 32 + view.getUint32(t, true)
      let meta: Readonly<EventMeta>
      if (cgroupId === 0) meta = this.nodeMeta
      else {
        const r = this.resolve(cgroupId)
        if (r.complete) meta = r.meta
        else if (r.gaveUp || this.options.lateMetadataMs === 0 || this.stopped) {
          meta = r.unresolvedMeta
          this.stats_.sentUnresolved++
        } else return false
      }
      this.stats_.events++
      write(batch, view, at, bootNs, stringArgs, meta)
      return true
    }
  }

  counters(events: CounterEvent[]): void {
    const out = this.enrich(events, undefined)
    if (out.length > 0) this.next.counters(out as CounterEvent[])
  }

  /** Resolve held events again soon (the pod cache changed). */
  poke(): void {
    if (this.retryQueued || this.pending.length === 0 || this.stopped) return
    this.retryQueued = true
    setImmediate(() => {
      this.retryQueued = false
      this.resolveHeld(false)
    })
  }

  stats(): EnricherStats {
    return { ...this.stats_, pending: this.pending.length }
  }

  /** Sends every held event with what is known now. Call after the capture delivered its last batch. */
  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    this.resolveHeld(true)
  }

  private enrich(events: AnyEvent[], family: Family | undefined): AnyEvent[] {
    const out: AnyEvent[] = []
    const now = this.options.now()
    for (const event of events) {
      this.stats_.events++
      const cgroupId = 'cgroupId' in event ? event.cgroupId : 0
      if (cgroupId === 0) {
        event.meta = this.nodeMeta
        out.push(event)
        continue
      }
      const r = this.resolve(cgroupId)
      // Sessions follow the process tree in capture order, so before any event is held.
      const session =
        this.sessions && family === 'exec' && r.meta.containerId !== undefined
          ? this.sessions.observe(event as RecordEvent, cgroupId, () =>
              join(this.options.cgroups.root, r.meta.cgroupPath!, 'cgroup.procs'),
            )
          : undefined
      if (r.complete) {
        event.meta = withSession(r.meta, session)
        out.push(event)
      } else if (r.gaveUp || this.options.lateMetadataMs === 0 || this.stopped) {
        event.meta = withSession(r.unresolvedMeta, session)
        this.stats_.sentUnresolved++
        out.push(event)
      } else {
        this.hold({
          event,
          family,
          cgroupId,
          deadline: now + this.options.lateMetadataMs,
          session,
        })
      }
    }
    return out
  }

  private hold(h: Held): void {
    if (this.pending.length >= this.options.maxPendingEvents) {
      // Full: the oldest goes out now with what is known, rather than memory growing.
      const oldest = this.pending.shift()!
      const r = this.resolve(oldest.cgroupId)
      oldest.event.meta = withSession(r.complete ? r.meta : r.unresolvedMeta, oldest.session)
      if (!r.complete) this.stats_.sentUnresolved++
      this.emit([oldest])
    }
    this.pending.push(h)
    this.stats_.held++
    if (!this.timer) {
      this.timer = setInterval(() => this.resolveHeld(false), this.options.retryIntervalMs)
      this.timer.unref()
    }
  }

  /** Resolves held events again; sends those resolved or past their wait (all when `final`). */
  resolveHeld(final = false): void {
    if (this.pending.length === 0) return
    const now = this.options.now()
    const ready: Held[] = []
    const still: Held[] = []
    for (const h of this.pending) {
      const r = this.resolve(h.cgroupId)
      if (r.complete) {
        h.event.meta = withSession(r.meta, h.session)
        this.stats_.resolvedLate++
        ready.push(h)
      } else if (final || now >= h.deadline) {
        r.gaveUp = true
        h.event.meta = withSession(r.unresolvedMeta, h.session)
        this.stats_.sentUnresolved++
        ready.push(h)
      } else {
        still.push(h)
      }
    }
    this.pending = still
    if (still.length === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = undefined
    }
    this.emit(ready)
  }

  /** Hands held events on, one call per run of the same family, in the order they came. */
  private emit(ready: Held[]): void {
    let i = 0
    while (i < ready.length) {
      const family = ready[i]!.family
      let j = i
      while (j < ready.length && ready[j]!.family === family) j++
      const batch = ready.slice(i, j).map((h) => h.event)
      if (family === undefined) this.next.counters(batch as CounterEvent[])
      else this.next.records(batch as RecordEvent[], family)
      i = j
    }
  }

  private resolve(cgroupId: number): Resolution {
    const version = this.pods?.version ?? 0
    const cached = this.cache.get(cgroupId)
    // A cgroup whose path was not found is looked up again each time (rate-limited by the
    // cgroup cache); one that was found only when the pod cache changed.
    if (cached && cached.version === version && cached.meta.cgroupPath !== undefined) return cached
    const r = this.compute(cgroupId, version)
    if (cached?.gaveUp) r.gaveUp = true
    this.cache.delete(cgroupId)
    this.cache.set(cgroupId, r)
    if (this.cache.size > this.options.maxCachedCgroups) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
    return r
  }

  private compute(cgroupId: number, version: number): Resolution {
    const ident = this.options.cgroups.resolve(cgroupId)
    const meta: EventMeta = { node: this.options.node }
    let complete = true
    if (!ident) {
      complete = false
    } else {
      meta.cgroupPath = ident.path
      if (ident.systemdUnit) meta.systemdUnit = ident.systemdUnit
      if (ident.podUid) meta.podUid = ident.podUid
      if (ident.qosClass) meta.qosClass = ident.qosClass
      if (ident.containerId) meta.containerId = ident.containerId
      if (ident.runtime) meta.runtime = ident.runtime
      if (ident.podUid && this.pods) {
        const byContainer = ident.containerId
          ? this.pods.byContainerId(ident.containerId)
          : undefined
        const pod = byContainer?.pod ?? this.pods.byUid(ident.podUid)
        if (pod) {
          meta.namespace = pod.namespace
          meta.pod = pod.name
          meta.workloadKind = pod.workloadKind
          meta.workloadName = pod.workloadName
          if (pod.serviceAccount) meta.serviceAccount = pod.serviceAccount
          meta.labels = pod.labels
          if (pod.function) meta.function = pod.function
          if (pod.functionRevision) meta.functionRevision = pod.functionRevision
        }
        if (byContainer) {
          meta.container = byContainer.container.name
          if (byContainer.container.image) meta.image = byContainer.container.image
          if (byContainer.container.runtime) meta.runtime = byContainer.container.runtime
        }
        // The pod's sandbox (pause) container never appears in its statuses: its few events
        // wait out the delay once and then go out flagged.
        complete =
          pod !== undefined && (ident.containerId === undefined || byContainer !== undefined)
      }
    }
    return {
      meta: Object.freeze(meta),
      unresolvedMeta: Object.freeze({ ...meta, unresolved: true as const }),
      complete,
      version,
      gaveUp: false,
    }
  }
}

/** Session events are few: they get their own copy; every other event shares its cgroup's. */
function withSession(meta: Readonly<EventMeta>, session: string | undefined): Readonly<EventMeta> {
  return session === undefined ? meta : Object.freeze({ ...meta, session })
}

export interface Enrichment {
  enricher: Enricher
  /** Absent in host mode. */
  watcher?: PodWatcher
  /** Absent in host mode. */
  pods?: PodIndex
  mode: 'kubernetes' | 'host'
  /** Stops the watch and sends every held event. Call after the capture has stopped. */
  stop(): Promise<void>
}

/** Processes followed per container for sessions: a container has far fewer live at once. */
const MAX_PROCESSES_PER_CONTAINER = 65_536

/** How to reach the API server, or undefined for host mode; a bad kubeconfig throws KubeConfigError. */
export function kubeAccessFor(config: EnrichConfig): KubeAccess | undefined {
  if (config.kubernetes === 'off') return undefined
  if (config.kubeconfig) return loadKubeconfig(config.kubeconfig)
  if (inCluster()) return inClusterAccess()
  return undefined
}

/**
 * Builds the stage in front of `next`: Kubernetes mode when a kubeconfig or an in-cluster
 * service account is there, host mode otherwise. Starts the pod watch without waiting for it.
 */
export function startEnrichment(
  config: EnrichConfig,
  next: CaptureSink,
  logger: Logger,
  options: { cgroupRoot?: string; kubeAccess?: KubeAccess } = {},
): Enrichment {
  const cgroups = new CgroupPathCache({
    root: options.cgroupRoot ?? findCgroup2Mount(),
    maxEntries: config.cgroupCacheMax,
    rescanMinMs: config.cgroupRescanMinMs,
  })
  cgroups.scan()
  const access = options.kubeAccess ?? kubeAccessFor(config)
  let pods: PodIndex | undefined
  let watcher: PodWatcher | undefined
  if (access) {
    pods = new PodIndex({
      labelAllowlist: config.labelAllowlist,
      maxLabels: config.maxLabels,
      functionLabels: config.functionLabels,
      deletedGraceMs: config.deletedPodGraceMs,
      maxPods: config.maxPods,
    })
    watcher = new PodWatcher(
      new KubeClient(access),
      pods,
      {
        nodeName: config.nodeName,
        backoffMinMs: config.kubeBackoffMs,
        backoffMaxMs: 30_000,
        sweepIntervalMs: Math.max(1000, Math.min(config.deletedPodGraceMs, 30_000)),
      },
      logger,
    )
  }
  const enricher = new Enricher(next, {
    node: config.nodeName,
    cgroups,
    ...(pods ? { pods } : {}),
    sessions: new SessionTracker({
      maxContainers: config.cgroupCacheMax,
      maxProcesses: MAX_PROCESSES_PER_CONTAINER,
    }),
    lateMetadataMs: config.lateMetadataMs,
    maxPendingEvents: config.maxPendingEvents,
    maxCachedCgroups: config.cgroupCacheMax,
  })
  if (watcher) {
    watcher.onChange(() => enricher.poke())
    watcher.start()
  }
  const mode = watcher ? 'kubernetes' : 'host'
  logger.info({ mode, node: config.nodeName }, 'enrichment started')
  return {
    enricher,
    ...(watcher ? { watcher } : {}),
    ...(pods ? { pods } : {}),
    mode,
    async stop() {
      await watcher?.stop()
      enricher.stop()
    },
  }
}
