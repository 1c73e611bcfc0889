// The resolution cache: each cgroup's composed metadata, made once and shared by every event
// of that cgroup until the pod index changes. Bounded, least recently resolved first out.
import type { EventMeta } from '@ebbflow/common'
import type { CgroupPathCache } from './cgroup-path.ts'
import { composeMeta } from './compose-meta.ts'
import type { PodIndex } from './pods.ts'

export interface Resolution {
  meta: Readonly<EventMeta>
  /** The same with `unresolved: true`, made once. */
  unresolvedMeta: Readonly<EventMeta>
  complete: boolean
  /** The pod index's version it was composed at. */
  version: number
  /** The wait ran out once for this cgroup: later events go out at once with what is known. */
  gaveUp: boolean
}

export interface ResolutionCacheOptions {
  node: string
  cgroups: CgroupPathCache
  /** Absent in host mode. */
  pods?: PodIndex
  /** Most cgroups whose resolution is kept. */
  maxEntries: number
}

export class ResolutionCache {
  private readonly entries = new Map<number, Resolution>()
  private readonly options: ResolutionCacheOptions
  /** The node-only metadata of events outside any cgroup (counters, cgroup id 0). */
  readonly nodeMeta: Readonly<EventMeta>

  constructor(options: ResolutionCacheOptions) {
    this.options = options
    this.nodeMeta = Object.freeze({ node: options.node })
  }

  resolve(cgroupId: number): Resolution {
    const version = this.options.pods?.version ?? 0
    const cached = this.entries.get(cgroupId)
    // A cgroup whose path was not found is looked up again each time (rate-limited by the
    // cgroup cache); one that was found only when the pod cache changed.
    if (cached && cached.version === version && cached.meta.cgroupPath !== undefined) return cached
    const { meta, complete } = composeMeta(
      this.options.node,
      this.options.cgroups.resolve(cgroupId),
      this.options.pods,
    )
    const r: Resolution = {
      meta: Object.freeze(meta),
      unresolvedMeta: Object.freeze({ ...meta, unresolved: true as const }),
      complete,
      version,
      gaveUp: cached?.gaveUp ?? false,
    }
    this.entries.delete(cgroupId)
    this.entries.set(cgroupId, r)
    if (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    return r
  }
}
