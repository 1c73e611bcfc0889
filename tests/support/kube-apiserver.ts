// A real Kubernetes API server for tests: etcd and kube-apiserver built from their Go modules
// by infra/kube/kube.sh (scripts/setup.sh builds them), started once per test file in a
// temporary folder, with an admin token, RBAC on, and a client for what a kubelet and the
// controllers would otherwise do here (there are none): the `default` ServiceAccount of a
// namespace, and container statuses of pods bound to a node.
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  CoreV1Api,
  KubeConfig,
  type V1ContainerStatus,
  type V1OwnerReference,
  type V1Pod,
} from '@kubernetes/client-node'

const kubeSh = join(import.meta.dirname, '../../infra/kube/kube.sh')
const execFileAsync = promisify(execFile)

function binDir(): string {
  return execFileSync(kubeSh, ['bin-dir'], { encoding: 'utf8' }).trim()
}

/** Why no API server can run here, or undefined when one can. */
export function kubeApiServerUnavailable(): string | undefined {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0)
    return 'needs openssl for the API server’s certificates'
  if (!existsSync(join(binDir(), '.complete')))
    return 'kube-apiserver and etcd are not built: run infra/kube/kube.sh build (scripts/setup.sh does)'
  return undefined
}

export interface TestContainer {
  name: string
  /** The runtime's id, without the `<runtime>://` prefix. */
  id: string
  image: string
  /** containerd unless said otherwise. */
  runtime?: string
}

export interface TestPod {
  namespace: string
  name: string
  nodeName: string
  containers: TestContainer[]
  labels?: Record<string, string>
  /** The controller owner, as the ReplicaSet or Job controller would set it. */
  owner?: { kind: string; name: string; apiVersion?: string }
  serviceAccount?: string
  /** The address kubelet reports (10.244.0.10 unless said). */
  podIP?: string
  /**
   * Requests of every container; the server derives the QoS class from them (none:
   * BestEffort, requests without equal limits: Burstable).
   */
  requests?: Record<string, string>
}

/** A running etcd + kube-apiserver pair; `stop()` ends both and removes their folder. */
export class KubeApiServer {
  readonly kc: KubeConfig
  readonly core: CoreV1Api
  private readonly namespaces = new Set<string>()

  readonly dir: string
  readonly kubeconfig: string
  readonly binDir: string

  /** kube-apiserver flags beyond kube.sh's own, kept for restarts. */
  private readonly apiserverArgs: string[]

  private constructor(dir: string, kubeconfig: string, bin: string, apiserverArgs: string[]) {
    this.apiserverArgs = apiserverArgs
    this.dir = dir
    this.kubeconfig = kubeconfig
    this.binDir = bin
    this.kc = new KubeConfig()
    this.kc.loadFromFile(kubeconfig)
    this.core = this.kc.makeApiClient(CoreV1Api)
  }

  /** `apiserverArgs`: more kube-apiserver flags (no spaces inside one). */
  static start(options: { apiserverArgs?: string[] } = {}): KubeApiServer {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-kube-'))
    const apiserverArgs = options.apiserverArgs ?? []
    try {
      const kubeconfig = execFileSync(kubeSh, ['start', '--dir', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 90_000,
        env: { ...process.env, KUBE_APISERVER_ARGS: apiserverArgs.join(' ') },
      }).trim()
      return new KubeApiServer(dir, kubeconfig, binDir(), apiserverArgs)
    } catch (err) {
      spawnSync(kubeSh, ['stop', '--dir', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
      const stderr = (err as { stderr?: string }).stderr
      throw new Error(`the API server did not start: ${stderr ?? String(err)}`)
    }
  }

  /** https://127.0.0.1:PORT */
  get server(): string {
    return this.kc.getCurrentCluster()!.server
  }

  /** kubectl built with the server, against it as the admin unless `kubeconfig` says otherwise. */
  async kubectl(
    args: string[],
    options: { input?: string; kubeconfig?: string; token?: string } = {},
  ): Promise<{ status: number; stdout: string; stderr: string }> {
    const extra = options.token ? ['--token', options.token] : []
    const child = execFileAsync(join(this.binDir, 'kubectl'), [...extra, ...args], {
      env: { ...process.env, KUBECONFIG: options.kubeconfig ?? this.kubeconfig },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    })
    if (options.input !== undefined) child.child.stdin!.end(options.input)
    else child.child.stdin!.end()
    try {
      const { stdout, stderr } = await child
      return { status: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return {
        status: typeof e.code === 'number' ? e.code : 1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? String(err),
      }
    }
  }

  /** As kubectl, but throws with kubectl's message when it fails. */
  async kubectlOk(args: string[], options: { input?: string } = {}): Promise<string> {
    const r = await this.kubectl(args, options)
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /**
   * A namespace and its `default` ServiceAccount (the controller manager's job, absent here:
   * pods cannot be created without it). Idempotent.
   */
  async namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    if (this.namespaces.has(name)) return
    await this.core.createNamespace({ body: { metadata: { name, labels } } }).catch(ignoreConflict)
    await this.serviceAccount(name, 'default')
    this.namespaces.add(name)
  }

  async serviceAccount(namespace: string, name: string): Promise<void> {
    await this.core
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
      .catch(ignoreConflict)
  }

  /**
   * Creates a pod bound to `nodeName` (as the scheduler would) and reports its containers
   * running (as kubelet would, through the status subresource). Returns the pod as stored.
   */
  async createPod(pod: TestPod): Promise<V1Pod> {
    await this.namespace(pod.namespace)
    if (pod.serviceAccount) await this.serviceAccount(pod.namespace, pod.serviceAccount)
    const created = await this.core.createNamespacedPod({
      namespace: pod.namespace,
      body: {
        metadata: {
          name: pod.name,
          labels: pod.labels ?? {},
          ...(pod.owner ? { ownerReferences: [ownerReference(pod.owner)] } : {}),
        },
        spec: {
          nodeName: pod.nodeName,
          serviceAccountName: pod.serviceAccount ?? 'default',
          // No token volume: nothing runs in these pods.
          automountServiceAccountToken: false,
          containers: pod.containers.map((c) => ({
            name: c.name,
            image: c.image,
            ...(pod.requests ? { resources: { requests: pod.requests } } : {}),
          })),
        },
      },
    })
    return this.reportRunning(created, pod.containers, pod.podIP)
  }

  /** What kubelet writes once the containers run: ids, images, phase. */
  async reportRunning(
    pod: V1Pod,
    containers: TestContainer[],
    podIP = '10.244.0.10',
  ): Promise<V1Pod> {
    const now = new Date()
    const statuses: V1ContainerStatus[] = containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: `${c.image.split(':')[0]}@sha256:${'ab'.repeat(32)}`,
      containerID: `${c.runtime ?? 'containerd'}://${c.id}`,
      ready: true,
      restartCount: 0,
      started: true,
      state: { running: { startedAt: now } },
    }))
    return this.core.replaceNamespacedPodStatus({
      name: pod.metadata!.name!,
      namespace: pod.metadata!.namespace!,
      body: {
        ...pod,
        status: {
          ...pod.status,
          phase: 'Running',
          hostIP: '127.0.0.1',
          podIP,
          podIPs: [{ ip: podIP }],
          startTime: now,
          containerStatuses: statuses,
        },
      },
    })
  }

  /** Replaces a pod's labels (a MODIFIED event for watchers). */
  async setLabels(namespace: string, name: string, labels: Record<string, string>): Promise<V1Pod> {
    const pod = await this.core.readNamespacedPod({ namespace, name })
    pod.metadata!.labels = labels
    return this.core.replaceNamespacedPod({ namespace, name, body: pod })
  }

  /** Deletes at once (no kubelet would ever confirm a graceful deletion). */
  async deletePod(namespace: string, name: string): Promise<void> {
    await this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 })
  }

  /** A token of a ServiceAccount, as `kubectl create token` gives it. */
  async token(namespace: string, serviceAccount: string): Promise<string> {
    return (await this.kubectlOk(['-n', namespace, 'create', 'token', serviceAccount])).trim()
  }

  /** A kubeconfig file for the same server that authenticates with `token`. */
  kubeconfigWithToken(token: string, file: string): string {
    const text = readFileSync(this.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`)
    const out = join(this.dir, file)
    writeFileSync(out, text, { mode: 0o600 })
    return out
  }

  /** The sum of a counter from the server's /metrics over series whose labels include `labels`. */
  async metric(name: string, labels: Record<string, string>): Promise<number> {
    const text = await this.kubectlOk(['get', '--raw', '/metrics'])
    let sum = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue
      const close = line.lastIndexOf('}')
      const series = line.slice(name.length + 1, close)
      const ok = Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))
      if (ok) sum += Number(line.slice(close + 1).trim())
    }
    return sum
  }

  /**
   * A pod not yet bound to a node (no scheduler here): no node's collector lists it. `bind`
   * then does what the scheduler and kubelet would.
   */
  async createUnscheduledPod(pod: TestPod): Promise<V1Pod> {
    await this.namespace(pod.namespace)
    return this.core.createNamespacedPod({
      namespace: pod.namespace,
      body: {
        metadata: {
          name: pod.name,
          labels: pod.labels ?? {},
          ...(pod.owner ? { ownerReferences: [ownerReference(pod.owner)] } : {}),
        },
        spec: {
          automountServiceAccountToken: false,
          containers: pod.containers.map((c) => ({ name: c.name, image: c.image })),
        },
      },
    })
  }

  /** The scheduler's binding to `pod.nodeName`, then the containers reported running. */
  async bind(pod: TestPod): Promise<V1Pod> {
    await this.core.createNamespacedPodBinding({
      namespace: pod.namespace,
      name: pod.name,
      body: { metadata: { name: pod.name }, target: { kind: 'Node', name: pod.nodeName } },
    })
    const bound = await this.core.readNamespacedPod({ namespace: pod.namespace, name: pod.name })
    return this.reportRunning(bound, pod.containers, pod.podIP)
  }

  /**
   * Compacts etcd at its current revision (physically), through etcd's JSON gateway: every
   * older resource version is gone, so a watch resumed from one gets 410 Gone. Returns the
   * revision.
   */
  async compactEtcd(): Promise<number> {
    const state = readFileSync(join(this.dir, 'state.env'), 'utf8')
    const port = /^ETCD_PORT=(\d+)$/m.exec(state)?.[1]
    if (!port) throw new Error(`no ETCD_PORT in ${this.dir}/state.env`)
    const call = async (path: string, body: object) => {
      const r = await fetch(`http://127.0.0.1:${port}/v3/${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      if (!r.ok) throw new Error(`etcd ${path}: ${r.status} ${await r.text()}`)
      return (await r.json()) as { header?: { revision?: string } }
    }
    const revision = Number((await call('kv/range', { key: 'AA==' })).header?.revision)
    if (!Number.isSafeInteger(revision) || revision <= 0)
      throw new Error(`etcd gave no revision (${revision})`)
    await call('kv/compaction', { revision: String(revision), physical: true })
    return revision
  }

  /** Watches of `resource` open at the server now (a gauge of its own). */
  openWatches(resource: string): Promise<number> {
    return this.metric('apiserver_longrunning_requests', { verb: 'WATCH', resource })
  }

  /** Stops kube-apiserver alone (etcd keeps the data); clients see connections refused. */
  async stopApiServer(): Promise<void> {
    await execFileAsync(kubeSh, ['stop', '--dir', this.dir, '--only', 'apiserver'])
  }

  /** Starts it again on the same port with the same CA and tokens; resolves once /readyz is ok. */
  async startApiServer(): Promise<void> {
    await execFileAsync(kubeSh, ['start', '--dir', this.dir, '--only', 'apiserver'], {
      timeout: 90_000,
      env: { ...process.env, KUBE_APISERVER_ARGS: this.apiserverArgs.join(' ') },
    })
  }

  stop(): void {
    spawnSync(kubeSh, ['stop', '--dir', this.dir], { stdio: 'ignore' })
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function ownerReference(owner: {
  kind: string
  name: string
  apiVersion?: string
}): V1OwnerReference {
  const apiVersion =
    owner.apiVersion ?? (owner.kind === 'Job' || owner.kind === 'CronJob' ? 'batch/v1' : 'apps/v1')
  // The owner need not exist: with no garbage collector here nothing checks it.
  return {
    apiVersion,
    kind: owner.kind,
    name: owner.name,
    uid: randomUUID(),
    controller: true,
    blockOwnerDeletion: true,
  }
}

function ignoreConflict(err: unknown): void {
  if ((err as { code?: number }).code !== 409) throw err
}
