// cgroup id → cgroup path → what runs there: a container (runtime, id, pod uid, QoS class) or a
// host systemd unit. The id an event carries is the inode number of the cgroup's directory
// (kernfs ids are 64-bit and not reused), so the mount is walked once into an inode → path
// cache and walked again only on a miss, no more often than `rescanMinMs`.
import { type Dirent, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export type ContainerRuntime = 'containerd' | 'crio' | 'docker' | 'podman'
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort'

export interface CgroupIdentity {
  /** Path below the cgroup v2 mount, starting with "/". */
  path: string
  runtime?: ContainerRuntime
  /** 64 hex digits, without the runtime prefix. */
  containerId?: string
  /** With dashes, as in metadata.uid (the systemd driver writes underscores). */
  podUid?: string
  qosClass?: QosClass
  /** The innermost systemd unit (`nginx.service`, `session-3.scope`) outside any container. */
  systemdUnit?: string
}

const HEX64 = '([0-9a-f]{64})'
// The container's own scope; `crio-conmon-<id>` and `libpod-conmon-<id>` hold the runtime
// monitor, not the container, and are deliberately not matched.
const CONTAINER_SEGMENTS: { re: RegExp; runtime: ContainerRuntime | undefined }[] = [
  { re: new RegExp(`^cri-containerd-${HEX64}\\.scope$`), runtime: 'containerd' },
  { re: new RegExp(`^crio-${HEX64}(?:\\.scope)?$`), runtime: 'crio' },
  { re: new RegExp(`^docker-${HEX64}\\.scope$`), runtime: 'docker' },
  { re: new RegExp(`^libpod-${HEX64}(?:\\.scope)?$`), runtime: 'podman' },
  // cgroupfs driver: kubelet names the leaf after the bare id; the runtime is only known from
  // the pod's status (containerd://, cri-o://).
  { re: new RegExp(`^${HEX64}$`), runtime: undefined },
]

// `kubelet-kubepods-…` when the kubelet runs under its own slice (kind, some distributions).
const SYSTEMD_POD =
  /^(?:[a-z0-9]+-)?kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_-]{32,36})\.slice$/
const CGROUPFS_POD = /^pod([0-9a-f-]{32,36})$/
const UNIT = /^[^/]+\.(?:service|scope)$/

/** What a cgroup path says about the workload in it. Pure; table-tested. */
export function parseCgroupPath(path: string): CgroupIdentity {
  const out: CgroupIdentity = { path }
  const segments = path.split('/').filter((s) => s.length > 0)
  let kubepodsAt = -1
  let podAt = -1
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!
    if (s === 'kubepods' || s === 'kubepods.slice') {
      if (kubepodsAt < 0) kubepodsAt = i
      continue
    }
    if (podAt >= 0) continue
    const sd = SYSTEMD_POD.exec(s)
    if (sd) {
      podAt = i
      out.podUid = sd[2]!.replaceAll('_', '-')
      out.qosClass = (sd[1] as QosClass | undefined) ?? 'guaranteed'
      continue
    }
    const fs = kubepodsAt >= 0 ? CGROUPFS_POD.exec(s) : null
    if (fs) {
      podAt = i
      out.podUid = fs[1]!
      const qos = segments[i - 1]
      out.qosClass = qos === 'burstable' || qos === 'besteffort' ? qos : 'guaranteed'
    }
  }
  // The innermost container segment: a process in a sub-cgroup of a container (systemd inside
  // the container, for one) still belongs to it.
  let containerAt = -1
  for (let i = segments.length - 1; i > podAt; i--) {
    const s = segments[i]!
    for (const { re, runtime } of CONTAINER_SEGMENTS) {
      const m = re.exec(s)
      if (!m) continue
      // A bare 64-hex leaf names a container only under a pod (cgroupfs driver) or under
      // Docker's cgroupfs parent `/docker/<id>`.
      if (runtime === undefined && podAt < 0 && segments[i - 1] !== 'docker') continue
      containerAt = i
      out.containerId = m[1]!
      const rt = runtime ?? (podAt < 0 ? 'docker' : undefined)
      if (rt) out.runtime = rt
      break
    }
    if (containerAt >= 0) break
  }
  if (containerAt < 0 && podAt < 0) {
    for (let i = segments.length - 1; i >= 0; i--) {
      if (UNIT.test(segments[i]!)) {
        out.systemdUnit = segments[i]!
        break
      }
    }
  }
  return out
}

export interface CgroupPathCacheOptions {
  /** The cgroup v2 mount. */
  root: string
  /** Most cgroups kept; the oldest are forgotten first. */
  maxEntries: number
  /** Shortest time between two walks of the mount (a miss for a cgroup that is already gone
   * must not turn every event into a walk). */
  rescanMinMs: number
  /** Deepest directory level walked below the root. */
  maxDepth?: number
  now?: () => number
}

export interface CgroupPathCacheStats {
  entries: number
  scans: number
  misses: number
}

/** cgroup id → identity, by walking the cgroup v2 mount. */
export class CgroupPathCache {
  private readonly byId = new Map<number, CgroupIdentity>()
  private readonly options: Required<CgroupPathCacheOptions>
  private lastScan = Number.NEGATIVE_INFINITY
  private scans = 0
  private misses = 0

  constructor(options: CgroupPathCacheOptions) {
    this.options = { maxDepth: 16, now: () => performance.now(), ...options }
  }

  /** The identity of a cgroup id, walking the mount again on a miss (rate-limited). */
  resolve(id: number): CgroupIdentity | undefined {
    const hit = this.byId.get(id)
    if (hit) return hit
    this.misses++
    if (this.options.now() - this.lastScan < this.options.rescanMinMs) return undefined
    this.scan()
    return this.byId.get(id)
  }

  /** Walks the mount; entries of cgroups that are gone stay (ids are not reused) until the bound pushes them out. */
  scan(): void {
    this.lastScan = this.options.now()
    this.scans++
    const { root, maxDepth, maxEntries } = this.options
    const walk = (dir: string, rel: string, depth: number) => {
      let id: number
      try {
        id = Number(statSync(dir, { bigint: true }).ino)
      } catch {
        return // removed while walking
      }
      if (!this.byId.has(id)) {
        this.byId.set(id, parseCgroupPath(rel === '' ? '/' : rel))
        if (this.byId.size > maxEntries) {
          const oldest = this.byId.keys().next().value
          if (oldest !== undefined) this.byId.delete(oldest)
        }
      }
      if (depth >= maxDepth) return
      let entries: Dirent[]
      try {
        entries = readdirSync(dir, { withFileTypes: true })
      } catch {
        return
      }
      for (const e of entries) {
        if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`, depth + 1)
      }
    }
    walk(root, '', 0)
  }

  /** The cgroup v2 mount this cache walks. */
  get root(): string {
    return this.options.root
  }

  stats(): CgroupPathCacheStats {
    return { entries: this.byId.size, scans: this.scans, misses: this.misses }
  }
}
