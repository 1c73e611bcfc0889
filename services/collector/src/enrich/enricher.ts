// The enrichment stage: a CaptureSink in front of another. Every event gets a `meta` naming
// the node and, through its cgroup, the container, pod, workload and function (or, on the
// host, the systemd unit). An event whose pod is not known yet (kubelet posts container ids a
// moment after the container starts) is held up to lateMetadataMs and resolved again; past that
// it goes out with what is known and `unresolved`. Held events leave in a later batch than
// their neighbours: order across events is given by bootNs, not by position.
// The stage only composes its parts, each with one job: the resolution cache (compose-meta.ts
// inside resolution-cache.ts), the late queue (late-queue.ts) and session tracking
// (sessions.ts). Events are fresh from decoding and owned by the stage: `meta` is set on them
// rather than on a copy, which would cost an allocation per event on the hot path.

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
import { type HeldEvent, LateQueue } from './late-queue.ts'
import { PodIndex, PodWatcher } from './pods.ts'
import { type Resolution, ResolutionCache } from './resolution-cache.ts'
import { SessionTracker } from './sessions.ts'

type AnyEvent = RecordEvent | CounterEvent

const RAW_CGROUP_ID = LAYOUTS.ebf_syscall_event_v1.fields['task.cgroup_id'].offset

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
  private readonly cgroupRoot: string
  private readonly lateMetadataMs: number
  private readonly now: () => number
  private readonly sessions: SessionTracker | undefined
  private readonly cache: ResolutionCache
  private readonly late: LateQueue
  private retryQueued = false
  private stopped = false
  private readonly stats_ = { events: 0, held: 0, resolvedLate: 0, sentUnresolved: 0 }

  constructor(next: CaptureSink, options: EnricherOptions) {
    this.next = next
    this.cgroupRoot = options.cgroups.root
    this.lateMetadataMs = options.lateMetadataMs
    this.now = options.now ?? (() => performance.now())
    this.sessions = options.sessions
    this.cache = new ResolutionCache({
      node: options.node,
      cgroups: options.cgroups,
      ...(options.pods ? { pods: options.pods } : {}),
      maxEntries: options.maxCachedCgroups,
    })
    this.late = new LateQueue({
      maxPending: options.maxPendingEvents,
      retryIntervalMs: options.retryIntervalMs ?? 100,
      retry: () => this.resolveHeld(false),
    })
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
      if (cgroupId === 0) meta = this.cache.nodeMeta
      else {
        const r = this.cache.resolve(cgroupId)
        if (r.complete) meta = r.meta
        else if (r.gaveUp || this.lateMetadataMs === 0 || this.stopped) {
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
    if (this.retryQueued || this.late.length === 0 || this.stopped) return
    this.retryQueued = true
    setImmediate(() => {
      this.retryQueued = false
      this.resolveHeld(false)
    })
  }

  stats(): EnricherStats {
    return { ...this.stats_, pending: this.late.length }
  }

  /** Sends every held event with what is known now. Call after the capture delivered its last batch. */
  stop(): void {
    this.stopped = true
    this.late.stopTimer()
    this.resolveHeld(true)
  }

  private enrich(events: AnyEvent[], family: Family | undefined): AnyEvent[] {
    const out: AnyEvent[] = []
    const now = this.now()
    for (const event of events) {
      this.stats_.events++
      const cgroupId = 'cgroupId' in event ? event.cgroupId : 0
      if (cgroupId === 0) {
        event.meta = this.cache.nodeMeta
        out.push(event)
        continue
      }
      const r = this.cache.resolve(cgroupId)
      // Sessions follow the process tree in capture order, so before any event is held.
      const session =
        this.sessions && family === 'exec' && r.meta.containerId !== undefined
          ? this.sessions.observe(event as RecordEvent, cgroupId, () =>
              join(this.cgroupRoot, r.meta.cgroupPath!, 'cgroup.procs'),
            )
          : undefined
      if (r.complete) {
        event.meta = withSession(r.meta, session)
        out.push(event)
      } else if (r.gaveUp || this.lateMetadataMs === 0 || this.stopped) {
        this.sendUnresolved(event, r, session)
        out.push(event)
      } else {
        this.stats_.held++
        const evicted = this.late.hold({
          event,
          family,
          cgroupId,
          deadline: now + this.lateMetadataMs,
          session,
        })
        // Full: the oldest goes out now with what is known, rather than memory growing.
        if (evicted) {
          const er = this.cache.resolve(evicted.cgroupId)
          if (er.complete) evicted.event.meta = withSession(er.meta, evicted.session)
          else this.sendUnresolved(evicted.event, er, evicted.session)
          this.emit([evicted])
        }
      }
    }
    return out
  }

  private sendUnresolved(event: AnyEvent, r: Resolution, session: string | undefined): void {
    event.meta = withSession(r.unresolvedMeta, session)
    this.stats_.sentUnresolved++
  }

  /** Resolves held events again; sends those resolved or past their wait (all when `final`). */
  resolveHeld(final = false): void {
    const now = this.now()
    const ready = this.late.release((h) => {
      const r = this.cache.resolve(h.cgroupId)
      if (r.complete) {
        h.event.meta = withSession(r.meta, h.session)
        this.stats_.resolvedLate++
        return true
      }
      if (final || now >= h.deadline) {
        r.gaveUp = true
        this.sendUnresolved(h.event, r, h.session)
        return true
      }
      return false
    })
    this.emit(ready)
  }

  /** Hands held events on, one call per run of the same family, in the order they came. */
  private emit(ready: HeldEvent[]): void {
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
  options: { nodeName: string; cgroupRoot?: string; kubeAccess?: KubeAccess },
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
        nodeName: options.nodeName,
        backoffMinMs: config.kubeBackoffMs,
        backoffMaxMs: 30_000,
        sweepIntervalMs: Math.max(1000, Math.min(config.deletedPodGraceMs, 30_000)),
      },
      logger,
    )
  }
  const enricher = new Enricher(next, {
    node: options.nodeName,
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
  logger.info({ mode, node: options.nodeName }, 'enrichment started')
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
