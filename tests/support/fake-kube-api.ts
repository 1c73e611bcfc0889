// A small Kubernetes API server for tests: GET /api/v1/pods as a list (PodList with
// metadata.resourceVersion) and as a streamed watch (newline-delimited ADDED/MODIFIED/DELETED
// events with increasing resourceVersion), filtered by fieldSelector, with `410 Gone` on demand.
// @kubernetes/client-node talks to it unchanged through a kubeconfig file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// biome-ignore lint/suspicious/noExplicitAny: pods are plain JSON objects here
export type PodObject = Record<string, any>

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface HistoryEntry {
  rv: number
  type: EventType
  pod: PodObject
}

interface OpenWatch {
  res: ServerResponse
  matches: (pod: PodObject) => boolean
}

export interface RequestRecord {
  path: string
  query: Record<string, string>
}

/** Supports what kubelet-scoped clients send: `spec.nodeName=X`, `==`, `!=`, comma-joined. */
function fieldMatcher(selector: string | null): (pod: PodObject) => boolean {
  if (!selector) return () => true
  const terms = selector.split(',').map((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term)
    if (!m) throw new Error(`bad fieldSelector term ${term}`)
    const [, field, op, value] = m
    const get = (pod: PodObject) =>
      field!.split('.').reduce((o: PodObject | undefined, k) => o?.[k], pod) ?? ''
    return op === '!=' ? (p: PodObject) => get(p) !== value : (p: PodObject) => get(p) === value
  })
  return (pod) => terms.every((t) => t(pod))
}

export class FakeKubeApi {
  readonly requests: RequestRecord[] = []
  private readonly server: Server
  private readonly pods = new Map<string, PodObject>()
  private readonly history: HistoryEntry[] = []
  private readonly watches = new Set<OpenWatch>()
  private rv = 1000
  /** Watches from a resourceVersion older than this get 410 Gone (as after etcd compaction). */
  private compactedBelow = 0
  private dir: string | undefined
  port = 0

  private constructor() {
    this.server = createServer((req, res) => this.handle(req, res))
  }

  static async start(port = 0): Promise<FakeKubeApi> {
    const api = new FakeKubeApi()
    await api.listen(port)
    return api
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as AddressInfo).port
        resolve()
      })
    })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Writes a kubeconfig for this server and returns its path. */
  kubeconfig(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'ebbflow-fake-kube-'))
    const path = join(this.dir, 'kubeconfig')
    writeFileSync(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'fake',
            // client-node 2 refuses plain http unless TLS verification is off.
            cluster: { server: this.url, 'insecure-skip-tls-verify': true },
          },
        ],
        users: [{ name: 'fake', user: { token: 'fake-token' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
        'current-context': 'fake',
      }),
    )
    return path
  }

  add(pod: PodObject): PodObject {
    return this.record('ADDED', pod)
  }

  modify(pod: PodObject): PodObject {
    return this.record('MODIFIED', pod)
  }

  delete(uid: string): PodObject {
    const pod = [...this.pods.values()].find((p) => p.metadata.uid === uid)
    if (!pod) throw new Error(`no pod ${uid}`)
    return this.record('DELETED', pod)
  }

  /**
   * Compacts the history: every open watch gets an ERROR event with a 410 Status and is
   * closed, and a watch resumed from any resourceVersion seen so far gets 410 too, which makes
   * a client relist. `silent` changes made at the same time reach the client only through
   * that relist.
   */
  gone(): void {
    // Every resourceVersion handed out so far is now too old; the next list's is not.
    this.compactedBelow = ++this.rv
    for (const w of this.watches) {
      this.writeEvent(w.res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'too old resource version',
          reason: 'Expired',
          code: 410,
        },
      })
      w.res.end()
    }
    this.watches.clear()
  }

  /** Changes a pod without telling open watches (as if the event was lost in a compaction). */
  setSilently(pod: PodObject): void {
    const stored = structuredClone(pod)
    stored.metadata.resourceVersion = String(++this.rv)
    this.pods.set(this.key(stored), stored)
  }

  /** Deletes a pod without telling open watches (its DELETED lost in a compaction). */
  deleteSilently(uid: string): void {
    const pod = [...this.pods.values()].find((p) => p.metadata.uid === uid)
    if (!pod) throw new Error(`no pod ${uid}`)
    this.pods.delete(this.key(pod))
    ++this.rv
  }

  /** Ends every open watch cleanly (as an API server does at its timeout). */
  endWatches(): void {
    for (const w of this.watches) w.res.end()
    this.watches.clear()
  }

  get openWatches(): number {
    return this.watches.size
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.res.destroy()
    this.watches.clear()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }

  private key(pod: PodObject): string {
    return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`
  }

  private record(type: EventType, pod: PodObject): PodObject {
    const stored = structuredClone(pod)
    stored.metadata.resourceVersion = String(++this.rv)
    if (type === 'DELETED') this.pods.delete(this.key(stored))
    else this.pods.set(this.key(stored), stored)
    const entry = { rv: this.rv, type, pod: stored }
    this.history.push(entry)
    for (const w of this.watches) {
      if (w.matches(stored)) this.writeEvent(w.res, { type, object: stored })
    }
    return stored
  }

  private writeEvent(res: ServerResponse, event: unknown): void {
    res.write(`${JSON.stringify(event)}\n`)
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url)
    this.requests.push({ path: url.pathname, query: Object.fromEntries(url.searchParams) })
    if (req.method !== 'GET' || url.pathname !== '/api/v1/pods') {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 }))
      return
    }
    let matches: (pod: PodObject) => boolean
    try {
      matches = fieldMatcher(url.searchParams.get('fieldSelector'))
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'Status', code: 400, message: String(err) }))
      return
    }
    if (url.searchParams.get('watch') !== 'true') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.rv) },
          items: [...this.pods.values()].filter(matches),
        }),
      )
      return
    }
    const from = Number(url.searchParams.get('resourceVersion') || '0')
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    if (from > 0 && from < this.compactedBelow) {
      this.writeEvent(res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Expired',
          code: 410,
        },
      })
      res.end()
      return
    }
    for (const e of this.history) {
      if (e.rv > from && matches(e.pod)) this.writeEvent(res, { type: e.type, object: e.pod })
    }
    const watch = { res, matches }
    this.watches.add(watch)
    res.on('close', () => this.watches.delete(watch))
  }
}

let podCounter = 0

/** A Pod as kubelet reports it once its containers run: ids, images, owners, labels. */
export function makePod(options: {
  uid: string
  name: string
  namespace?: string
  nodeName: string
  containers: { name: string; id: string; image: string; runtime?: string }[]
  initContainers?: { name: string; id: string; image: string }[]
  labels?: Record<string, string>
  owner?: { kind: string; name: string }
  serviceAccount?: string
}): PodObject {
  const runtime = (c: { runtime?: string }) => c.runtime ?? 'containerd'
  const status = (c: { name: string; id: string; image: string; runtime?: string }) => ({
    name: c.name,
    image: c.image,
    imageID: `${c.image.split(':')[0]}@sha256:${'ab'.repeat(32)}`,
    containerID: `${runtime(c)}://${c.id}`,
    ready: true,
    restartCount: 0,
    started: true,
    state: { running: { startedAt: '2026-11-27T02:00:00Z' } },
  })
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name,
      namespace: options.namespace ?? 'default',
      uid: options.uid,
      creationTimestamp: '2026-11-27T02:00:00Z',
      labels: options.labels ?? {},
      ownerReferences: options.owner
        ? [
            {
              apiVersion: options.owner.kind === 'Job' ? 'batch/v1' : 'apps/v1',
              kind: options.owner.kind,
              name: options.owner.name,
              uid: `00000000-0000-4000-8000-${String(++podCounter).padStart(12, '0')}`,
              controller: true,
              blockOwnerDeletion: true,
            },
          ]
        : [],
    },
    spec: {
      nodeName: options.nodeName,
      serviceAccountName: options.serviceAccount ?? 'default',
      containers: options.containers.map((c) => ({ name: c.name, image: c.image })),
      initContainers: (options.initContainers ?? []).map((c) => ({ name: c.name, image: c.image })),
    },
    status: {
      phase: 'Running',
      qosClass: 'Burstable',
      hostIP: '10.0.0.5',
      podIP: '10.244.1.17',
      containerStatuses: options.containers.map(status),
      initContainerStatuses: (options.initContainers ?? []).map((c) => ({
        ...status(c),
        ready: false,
        state: { terminated: { exitCode: 0, reason: 'Completed' } },
      })),
    },
  }
}
