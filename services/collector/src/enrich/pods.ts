// The pods of this node, by pod uid and by container id, from the API server's list+watch
// (kube-client.ts, restricted with spec.nodeName=<node>).
// Deleted pods stay resolvable for a grace period, so the last events of a short-lived pod
// or function still carry its name; the cache is bounded.

import type { Logger } from '@ebbflow/common'
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node'
import type { KubeClient } from './kube-client.ts'
import { KubeRequestError } from './kube-client.ts'

export interface ContainerMeta {
  name: string
  image?: string
  /** containerd, cri-o, docker… from the `<runtime>://` prefix of the status' containerID. */
  runtime?: string
  kind: 'container' | 'init' | 'ephemeral'
}

export interface PodMeta {
  uid: string
  namespace: string
  name: string
  node?: string
  serviceAccount?: string
  workloadKind: string
  workloadName: string
  labels: Record<string, string>
  function?: string
  functionRevision?: string
  /** container id (no runtime prefix) → container. */
  containers: Map<string, ContainerMeta>
  /** Container name → image from the spec, for containers whose status has no id yet. */
  images: Map<string, string>
  /** When the watch said DELETED (ms, the cache's clock); undefined while it exists. */
  deletedAt?: number
}

export interface Workload {
  kind: string
  name: string
}

// Characters of the pod-template-hash (k8s.io/apimachinery rand.SafeEncodeString: no vowels,
// no 0/1/3, so a hash never spells a word).
const TEMPLATE_HASH = /^(.+)-[bcdfghjklmnpqrstvwxz2456789]{1,10}$/
// The CronJob controller names each Job `<cronjob>-<scheduled time in Unix minutes>`: eight
// digits or more since 1973; requiring eight keeps `migrate-2` a Job.
const CRONJOB_JOB = /^(.+)-\d{8,}$/

/** The workload a pod belongs to: through its controller owner, ReplicaSet → Deployment, Job → CronJob. */
export function workloadOf(pod: V1Pod): Workload {
  const meta = pod.metadata ?? {}
  const owners = meta.ownerReferences ?? []
  const owner = owners.find((o) => o.controller) ?? owners[0]
  if (!owner) return { kind: 'Pod', name: meta.name ?? '' }
  if (owner.kind === 'ReplicaSet') {
    const hash = meta.labels?.['pod-template-hash']
    if (hash && owner.name.endsWith(`-${hash}`))
      return { kind: 'Deployment', name: owner.name.slice(0, -(hash.length + 1)) }
    if (!hash) {
      const m = TEMPLATE_HASH.exec(owner.name)
      if (m) return { kind: 'Deployment', name: m[1]! }
    }
    return { kind: 'ReplicaSet', name: owner.name }
  }
  if (owner.kind === 'Job') {
    const m = CRONJOB_JOB.exec(owner.name)
    if (m) return { kind: 'CronJob', name: m[1]! }
  }
  return { kind: owner.kind, name: owner.name }
}

/** Label keys that serverless platforms put on their function pods, in the order tried. */
export const FUNCTION_LABELS: readonly string[] = [
  'serving.knative.dev/service', // Knative Serving
  'faas_function', // OpenFaaS
  'functionName', // Fission
  'function', // Kubeless
]

/** The function a pod serves: user-configured keys first, then the platforms' labels. */
export function functionOf(
  labels: Record<string, string> | undefined,
  extraKeys: readonly string[] = [],
): { function?: string; functionRevision?: string } {
  if (!labels) return {}
  const out: { function?: string; functionRevision?: string } = {}
  for (const key of [...extraKeys, ...FUNCTION_LABELS]) {
    const v = labels[key]
    if (v) {
      out.function = v
      break
    }
  }
  const revision = labels['serving.knative.dev/revision']
  if (revision) {
    out.functionRevision = revision
    // A Knative revision without its service label (a bare Configuration) still names a function.
    out.function ??= labels['serving.knative.dev/configuration'] ?? revision
  }
  return out
}

/**
 * The status' runtime scheme in the spelling cgroup paths give it (ContainerRuntime), so an
 * event names its runtime the same way whether its pod is known yet or not.
 */
const RUNTIME_SPELLING: Readonly<Record<string, string>> = { 'cri-o': 'crio' }

/** `containerd://<id>` → { runtime, id }; `cri-o://` is spelled `crio`. */
export function parseContainerId(
  containerID: string | undefined,
): { runtime: string; id: string } | undefined {
  if (!containerID) return undefined
  const at = containerID.indexOf('://')
  if (at < 0) return { runtime: '', id: containerID }
  const runtime = containerID.slice(0, at)
  return { runtime: RUNTIME_SPELLING[runtime] ?? runtime, id: containerID.slice(at + 3) }
}

export interface PodIndexOptions {
  /** Label keys kept; empty keeps all, up to maxLabels. */
  labelAllowlist: readonly string[]
  maxLabels: number
  functionLabels: readonly string[]
  /** How long a deleted pod stays resolvable. */
  deletedGraceMs: number
  /** Most pods kept, deleted ones counted; the longest-deleted are forgotten first. */
  maxPods: number
  now?: () => number
}

/** Most container ids remembered per pod (restarts make new ones; old ones stay for late events). */
const MAX_CONTAINERS_PER_POD = 64
const MAX_LABEL_VALUE = 256

export class PodIndex {
  private readonly pods = new Map<string, PodMeta>()
  private readonly byContainer = new Map<string, string>()
  private readonly options: Required<PodIndexOptions>
  private readonly allow: Set<string> | undefined
  /** Bumped on every change, so callers can cache what they derived from the index. */
  version = 0

  constructor(options: PodIndexOptions) {
    this.options = { now: () => Date.now(), ...options }
    this.allow = options.labelAllowlist.length > 0 ? new Set(options.labelAllowlist) : undefined
  }

  get size(): number {
    return this.pods.size
  }

  byUid(uid: string): PodMeta | undefined {
    return this.pods.get(uid)
  }

  byContainerId(id: string): { pod: PodMeta; container: ContainerMeta } | undefined {
    const uid = this.byContainer.get(id)
    const pod = uid === undefined ? undefined : this.pods.get(uid)
    const container = pod?.containers.get(id)
    return pod && container ? { pod, container } : undefined
  }

  upsert(pod: V1Pod): void {
    const uid = pod.metadata?.uid
    if (!uid) return
    const previous = this.pods.get(uid)
    const meta = this.toMeta(pod, previous)
    // Re-insert so Map order stays "least recently changed first" for eviction.
    this.pods.delete(uid)
    this.pods.set(uid, meta)
    for (const id of meta.containers.keys()) this.byContainer.set(id, uid)
    this.version++
    this.enforceBound()
  }

  /** The watch said DELETED: keep it resolvable for the grace period. */
  markDeleted(pod: V1Pod): void {
    const uid = pod.metadata?.uid
    if (!uid) return
    // Its final status may carry container ids the cache has not seen (or the pod itself,
    // when it came and went between two lists).
    this.upsert(pod)
    const meta = this.pods.get(uid)
    if (meta) meta.deletedAt = this.options.now()
    this.version++
  }

  /** Forgets pods deleted longer ago than the grace period. */
  sweep(): void {
    const now = this.options.now()
    for (const [uid, meta] of this.pods) {
      if (meta.deletedAt !== undefined && now - meta.deletedAt >= this.options.deletedGraceMs)
        this.forget(uid)
    }
  }

  private forget(uid: string): void {
    const meta = this.pods.get(uid)
    if (!meta) return
    this.pods.delete(uid)
    for (const id of meta.containers.keys()) {
      if (this.byContainer.get(id) === uid) this.byContainer.delete(id)
    }
    this.version++
  }

  private enforceBound(): void {
    if (this.pods.size <= this.options.maxPods) return
    this.sweep()
    // Deleted pods go first (longest-deleted first), then the least recently changed.
    const deleted = [...this.pods.values()]
      .filter((p) => p.deletedAt !== undefined)
      .sort((a, b) => a.deletedAt! - b.deletedAt!)
    for (const p of deleted) {
      if (this.pods.size <= this.options.maxPods) return
      this.forget(p.uid)
    }
    for (const uid of this.pods.keys()) {
      if (this.pods.size <= this.options.maxPods) return
      this.forget(uid)
    }
  }

  private toMeta(pod: V1Pod, previous: PodMeta | undefined): PodMeta {
    const m = pod.metadata!
    const workload = workloadOf(pod)
    const labels: Record<string, string> = {}
    let n = 0
    for (const key of Object.keys(m.labels ?? {}).sort()) {
      if (n >= this.options.maxLabels) break
      if (this.allow && !this.allow.has(key)) continue
      labels[key] = m.labels![key]!.slice(0, MAX_LABEL_VALUE)
      n++
    }
    const fn = functionOf(m.labels, this.options.functionLabels)
    const images = new Map<string, string>()
    for (const c of [
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.containers ?? []),
      ...(pod.spec?.ephemeralContainers ?? []),
    ]) {
      if (c.image) images.set(c.name, c.image)
    }
    const containers = new Map(previous?.containers)
    const add = (statuses: V1ContainerStatus[] | undefined, kind: ContainerMeta['kind']) => {
      for (const s of statuses ?? []) {
        for (const containerID of [s.containerID, s.lastState?.terminated?.containerID]) {
          const parsed = parseContainerId(containerID)
          if (!parsed) continue
          const c: ContainerMeta = { name: s.name, kind }
          const image = s.image || images.get(s.name)
          if (image) c.image = image
          if (parsed.runtime) c.runtime = parsed.runtime
          containers.delete(parsed.id)
          containers.set(parsed.id, c)
        }
      }
    }
    add(pod.status?.initContainerStatuses, 'init')
    add(pod.status?.containerStatuses, 'container')
    add(pod.status?.ephemeralContainerStatuses, 'ephemeral')
    while (containers.size > MAX_CONTAINERS_PER_POD) {
      const oldest = containers.keys().next().value!
      containers.delete(oldest)
      if (this.byContainer.get(oldest) === m.uid) this.byContainer.delete(oldest)
    }
    const meta: PodMeta = {
      uid: m.uid!,
      namespace: m.namespace ?? 'default',
      name: m.name ?? '',
      workloadKind: workload.kind,
      workloadName: workload.name,
      labels,
      containers,
      images,
    }
    if (pod.spec?.nodeName) meta.node = pod.spec.nodeName
    if (pod.spec?.serviceAccountName) meta.serviceAccount = pod.spec.serviceAccountName
    if (fn.function) meta.function = fn.function
    if (fn.functionRevision) meta.functionRevision = fn.functionRevision
    return meta
  }
}

export interface PodWatcherOptions {
  nodeName: string
  /** First and longest wait before restarting a failed list or watch. */
  backoffMinMs: number
  backoffMaxMs: number
  /** How often deleted pods past their grace period are swept. */
  sweepIntervalMs: number
  /** How long the API server keeps one watch open (it ends it then; the watch resumes).
   * Default: 300 s, jittered by up to a half so a cluster's collectors do not rewatch at once. */
  watchTimeoutSeconds?: number
}

export interface PodWatcherStats {
  listsOrWatchesFailed: number
  restarts: number
  connected: boolean
  lists: number
  watches: number
  /** Watches the server ended with 410 Gone (or refused with it): each one made a relist. */
  expired: number
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  // biome-ignore lint/suspicious/noExplicitAny: a pod or a Status, told apart by `type`
  object: any
}

class Expired extends Error {}

/** A watch that brings nothing (not even a bookmark, about once a minute) for this long is dead. */
const WATCH_IDLE_SLACK_MS = 90_000

/**
 * Feeds a PodIndex from list+watch of this node's pods, as client-go's reflector does: list
 * (remembering the list's resourceVersion), then watch from it with bookmarks; a watch the
 * server ends resumes from the last resourceVersion seen; 410 Gone (the version was compacted
 * away) relists, and pods missing from the new list are marked deleted. After any other
 * failure (API server down at start, a refused connection) it retries with exponential
 * backoff: capture never waits for it.
 */
export class PodWatcher {
  private readonly client: KubeClient
  private readonly index: PodIndex
  private readonly options: PodWatcherOptions
  private readonly logger: Logger
  private readonly listeners: (() => void)[] = []
  private readonly fieldSelector: string
  private backoffMs: number
  private retryTimer: NodeJS.Timeout | undefined
  private readonly sweepTimer: NodeJS.Timeout
  private stopped = false
  private abort: AbortController | undefined
  private running: Promise<void> | undefined
  /** uid → resourceVersion of every pod the last list or the watch since reported. */
  private readonly known = new Map<string, string>()
  private resourceVersion = ''
  private readonly stats_: PodWatcherStats = {
    listsOrWatchesFailed: 0,
    restarts: 0,
    connected: false,
    lists: 0,
    watches: 0,
    expired: 0,
  }

  constructor(client: KubeClient, index: PodIndex, options: PodWatcherOptions, logger: Logger) {
    this.client = client
    this.index = index
    this.options = options
    this.logger = logger
    this.backoffMs = options.backoffMinMs
    this.fieldSelector = `spec.nodeName=${options.nodeName}`
    this.sweepTimer = setInterval(() => index.sweep(), options.sweepIntervalMs)
    this.sweepTimer.unref()
  }

  /** Starts list+watch; never throws for an unreachable API server (it retries). */
  start(): void {
    if (this.stopped || this.running) return
    this.running = this.run().finally(() => (this.running = undefined))
  }

  /** Called after every change the watch applied to the index. */
  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  stats(): PodWatcherStats {
    return { ...this.stats_ }
  }

  private changed(): void {
    for (const l of this.listeners) l()
  }

  private async run(): Promise<void> {
    try {
      // An empty resourceVersion means "list first" (at start, after 410 and after a failure).
      for (;;) {
        if (this.stopped) return
        if (this.resourceVersion === '') await this.list()
        try {
          await this.watch()
        } catch (err) {
          if (!(err instanceof Expired)) throw err
          this.stats_.expired++
          this.resourceVersion = ''
        }
      }
    } catch (err) {
      if (this.stopped) return
      this.onError(err)
    }
  }

  private async list(): Promise<void> {
    const abort = new AbortController()
    this.abort = abort
    const list = await this.client.getJson<{
      metadata?: { resourceVersion?: string }
      items?: V1Pod[]
    }>('/api/v1/pods', { query: { fieldSelector: this.fieldSelector }, signal: abort.signal })
    if (this.stopped) return
    this.stats_.lists++
    const seen = new Set<string>()
    for (const pod of list.items ?? []) {
      const uid = pod.metadata?.uid
      if (!uid) continue
      seen.add(uid)
      const rv = pod.metadata?.resourceVersion ?? ''
      if (this.known.get(uid) === rv && rv !== '') continue
      this.known.set(uid, rv)
      this.index.upsert(pod)
    }
    // Gone while the watch was away: its DELETED was never seen.
    for (const uid of [...this.known.keys()]) {
      if (seen.has(uid)) continue
      this.known.delete(uid)
      const meta = this.index.byUid(uid)
      if (meta && meta.deletedAt === undefined)
        this.index.markDeleted({ metadata: { uid, name: meta.name, namespace: meta.namespace } })
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? ''
    this.connected()
  }

  private connected(): void {
    this.backoffMs = this.options.backoffMinMs
    this.stats_.connected = true
    this.changed()
  }

  private async watch(): Promise<void> {
    const base = this.options.watchTimeoutSeconds ?? 300
    const timeoutSeconds = Math.round(base + Math.random() * (base / 2))
    const abort = new AbortController()
    this.abort = abort
    const res = await this.client
      .get('/api/v1/pods', {
        query: {
          fieldSelector: this.fieldSelector,
          watch: 'true',
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(timeoutSeconds),
        },
        signal: abort.signal,
      })
      .catch((err: unknown) => {
        if (err instanceof KubeRequestError && err.status === 410) throw new Expired()
        throw err
      })
    this.stats_.watches++
    this.stats_.connected = true
    const idleMs = timeoutSeconds * 1000 + WATCH_IDLE_SLACK_MS
    const idle = setTimeout(() => abort.abort(new Error('watch idle')), idleMs)
    try {
      res.setEncoding('utf8')
      let rest = ''
      for await (const chunk of res as AsyncIterable<string>) {
        idle.refresh()
        rest += chunk
        let nl = rest.indexOf('\n')
        while (nl >= 0) {
          const line = rest.slice(0, nl)
          rest = rest.slice(nl + 1)
          if (line.trim() !== '') this.apply(JSON.parse(line) as WatchEvent)
          nl = rest.indexOf('\n')
        }
      }
      if (rest.trim() !== '') this.apply(JSON.parse(rest) as WatchEvent)
    } catch (err) {
      if (this.stopped || err instanceof Expired) throw err
      throw new KubeRequestError(0, `watch of pods: ${(err as Error).message}`, { cause: err })
    } finally {
      clearTimeout(idle)
    }
  }

  private apply(event: WatchEvent): void {
    const obj = event.object
    if (event.type === 'ERROR') {
      if (obj?.code === 410) throw new Expired()
      throw new KubeRequestError(obj?.code ?? 0, `watch of pods: ${obj?.message ?? 'ERROR event'}`)
    }
    const rv = obj?.metadata?.resourceVersion
    if (typeof rv === 'string' && rv !== '') this.resourceVersion = rv
    if (event.type === 'BOOKMARK') return
    const pod = obj as V1Pod
    const uid = pod.metadata?.uid
    if (!uid) return
    if (event.type === 'DELETED') {
      this.known.delete(uid)
      this.index.markDeleted(pod)
    } else {
      this.known.set(uid, rv ?? '')
      this.index.upsert(pod)
    }
    this.connected()
  }

  private onError(err: unknown): void {
    if (this.stopped) return
    this.stats_.listsOrWatchesFailed++
    this.stats_.connected = false
    // What happened while away is only known from a new list.
    this.resourceVersion = ''
    const delay = this.backoffMs
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.backoffMaxMs)
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err), retryInMs: delay },
      'pod list/watch failed; events keep flowing with what is known',
    )
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      if (this.stopped) return
      this.stats_.restarts++
      this.start()
    }, delay)
    this.retryTimer.unref()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.retryTimer)
    clearInterval(this.sweepTimer)
    this.abort?.abort()
    await this.running
    this.client.close()
  }
}
