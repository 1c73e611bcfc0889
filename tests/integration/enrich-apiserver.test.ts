// Naming pods against a real kube-apiserver (etcd behind it, RBAC on): the collector's pod
// watch (@kubernetes/client-node's ListWatch inside PodWatcher) sees what the test creates,
// changes and deletes, through the server's own field selectors, resource versions and
// watch cache. enrich.test.ts keeps the project's small list/watch server for what a real
// server cannot be made to do on demand: a watch cut while the server stays up, a change the
// watch never delivers followed by 410 Gone, and an API server that is not there at start.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { type CapturedEvent, createLogger, type ExecEvent, findCgroup2Mount } from '@ebbflow/common'
import { isRoot, RecordingSink } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable, type TestPod } from '../support/kube-apiserver.ts'

const NODE = 'node-under-test'
const logger = createLogger('test', 'silent')
const skip = kubeApiServerUnavailable() ?? false

async function until(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function containerId(): string {
  return randomBytes(32).toString('hex')
}

function enrich(kubeconfig: string): Enrichment {
  const config = loadEnrichConfig(
    { kubeconfig, nodeName: NODE, kubeBackoffMs: '100', deletedPodGraceMs: '60000' },
    {},
  )
  return startEnrichment(config, new RecordingSink(), logger)
}

/** Pod list requests the server answered (its own counter; it restarts with the server). */
function podLists(kube: KubeApiServer): Promise<number> {
  return kube.metric('apiserver_request_total', { verb: 'LIST', resource: 'pods', code: '200' })
}

describe('pod enrichment against a real kube-apiserver', { skip, timeout: 180_000 }, () => {
  let kube: KubeApiServer
  let enrichment: Enrichment | undefined
  let figletUid = ''
  // The server lists pods itself when it starts (before any client does): counted once here.
  let ownLists = 0
  const checkout = {
    namespace: 'shop',
    name: 'checkout-7d9f8b6c5-x2x9k',
    nodeName: NODE,
    serviceAccount: 'checkout',
    owner: { kind: 'ReplicaSet', name: 'checkout-7d9f8b6c5' },
    labels: {
      app: 'checkout',
      'pod-template-hash': '7d9f8b6c5',
      'serving.knative.dev/service': 'resize-image',
      'serving.knative.dev/revision': 'resize-image-00001',
    },
    containers: [{ name: 'api', id: containerId(), image: 'ghcr.io/shop/checkout:1.4.2' }],
  } satisfies TestPod
  const elsewhere = {
    namespace: 'shop',
    name: 'elsewhere',
    nodeName: 'another-node',
    containers: [{ name: 'x', id: containerId(), image: 'busybox:1.36' }],
  } satisfies TestPod

  before(() => {
    kube = KubeApiServer.start()
  })
  after(async () => {
    await enrichment?.stop()
    kube?.stop()
  })

  it('lists only this node’s pods (field selector at the server), with workload and function', async () => {
    const created = await kube.createPod(checkout)
    await kube.createPod(elsewhere)
    ownLists = await podLists(kube)
    enrichment = enrich(kube.kubeconfig)
    const pods = enrichment.pods!
    await until('the first list', () => pods.size > 0)
    const found = pods.byContainerId(checkout.containers[0]!.id)
    assert.ok(found, 'the pod is known by its container id')
    assert.equal(found.pod.uid, created.metadata!.uid, 'the uid the server gave it')
    assert.equal(found.pod.namespace, 'shop')
    assert.equal(found.pod.name, checkout.name)
    assert.equal(found.pod.node, NODE)
    assert.equal(found.pod.serviceAccount, 'checkout')
    assert.equal(found.pod.workloadKind, 'Deployment')
    assert.equal(found.pod.workloadName, 'checkout')
    assert.equal(found.pod.function, 'resize-image')
    assert.equal(found.pod.functionRevision, 'resize-image-00001')
    assert.deepEqual(found.pod.labels, checkout.labels)
    assert.equal(found.container.name, 'api')
    assert.equal(found.container.image, 'ghcr.io/shop/checkout:1.4.2')
    assert.equal(found.container.runtime, 'containerd')
    assert.equal(pods.byContainerId(elsewhere.containers[0]!.id), undefined, 'not this node’s')
    assert.equal(pods.size, 1)
    assert.equal(await podLists(kube), ownLists + 1, 'one list, then the watch')
  })

  it('follows pods created, changed and deleted while it watches', async () => {
    const pods = enrichment!.pods!
    await until('the watch', () => enrichment!.watcher!.stats().connected)
    const cron = {
      namespace: 'batch',
      name: 'nightly-report-29391840-7xk2p',
      nodeName: NODE,
      owner: { kind: 'Job', name: 'nightly-report-29391840' },
      containers: [{ name: 'report', id: containerId(), image: 'ghcr.io/shop/report:3' }],
    } satisfies TestPod
    const figlet = {
      namespace: 'openfaas-fn',
      name: 'figlet-6b7c9d8f5-abcde',
      nodeName: NODE,
      owner: { kind: 'ReplicaSet', name: 'figlet-6b7c9d8f5' },
      labels: { faas_function: 'figlet', 'pod-template-hash': '6b7c9d8f5' },
      containers: [{ name: 'figlet', id: containerId(), image: 'ghcr.io/openfaas/figlet:latest' }],
    } satisfies TestPod
    const cronPod = await kube.createPod(cron)
    const figletPod = await kube.createPod(figlet)
    await until('the CronJob’s pod', () => pods.byUid(cronPod.metadata!.uid!) !== undefined)
    await until('the function’s pod', () => pods.byUid(figletPod.metadata!.uid!) !== undefined)
    const job = pods.byUid(cronPod.metadata!.uid!)!
    assert.deepEqual([job.workloadKind, job.workloadName], ['CronJob', 'nightly-report'])
    assert.equal(pods.byContainerId(cron.containers[0]!.id)?.container.name, 'report')
    figletUid = figletPod.metadata!.uid!
    const fn = pods.byUid(figletUid)!
    assert.deepEqual(
      [fn.workloadKind, fn.workloadName, fn.function],
      ['Deployment', 'figlet', 'figlet'],
    )

    await kube.setLabels('shop', checkout.name, {
      ...checkout.labels,
      'serving.knative.dev/revision': 'resize-image-00002',
      canary: 'true',
    })
    const uid = pods.byContainerId(checkout.containers[0]!.id)!.pod.uid
    await until('the new labels', () => pods.byUid(uid)?.labels.canary === 'true')
    assert.equal(pods.byUid(uid)?.functionRevision, 'resize-image-00002')

    await kube.deletePod('batch', cron.name)
    await until('the deletion', () => pods.byUid(cronPod.metadata!.uid!)?.deletedAt !== undefined)
    assert.equal(
      pods.byContainerId(cron.containers[0]!.id)?.pod.name,
      cron.name,
      'a deleted pod keeps its name for the grace period',
    )
    assert.equal(
      await podLists(kube),
      ownLists + 1,
      'every change came through the watch, no relist',
    )
  })

  it('resumes after the API server restarts (410 Gone for its old version): nothing missed, one relist', async (t) => {
    const pods = enrichment!.pods!
    const watcher = enrichment!.watcher!
    const checkoutUid = pods.byContainerId(checkout.containers[0]!.id)!.pod.uid
    // A write the collector's watch does not see (another node's pod; no bookmarks asked for):
    // the newest version it knows is now older than the store's, so the restarted server's
    // watch cache, which starts at the store's version, answers its resume with 410 Gone.
    await kube.createPod({
      ...elsewhere,
      name: 'elsewhere-2',
      containers: [{ name: 'x', id: containerId(), image: 'busybox:1.36' }],
    })
    const failedBefore = watcher.stats().listsOrWatchesFailed
    await kube.stopApiServer()
    await until('the watch to notice', () => watcher.stats().listsOrWatchesFailed > failedBefore)
    assert.equal(
      pods.byUid(checkoutUid)?.name,
      checkout.name,
      'what is known stays known while the server is away',
    )
    await kube.startApiServer()
    // Changes made as soon as the server is back, racing the watcher's reconnection.
    const late = {
      namespace: 'shop',
      name: 'late-0',
      nodeName: NODE,
      owner: { kind: 'StatefulSet', name: 'late' },
      containers: [{ name: 'db', id: containerId(), image: 'postgres:17' }],
    } satisfies TestPod
    const latePod = await kube.createPod(late)
    await kube.setLabels('shop', checkout.name, { ...checkout.labels, version: 'after-restart' })
    await kube.deletePod('openfaas-fn', 'figlet-6b7c9d8f5-abcde')
    await until(
      'the pod created after the restart',
      () => pods.byUid(latePod.metadata!.uid!) !== undefined,
    )
    await until(
      'the label set after the restart',
      () => pods.byUid(checkoutUid)?.labels.version === 'after-restart',
    )
    await until(
      'the deletion after the restart',
      () => pods.byUid(figletUid)?.deletedAt !== undefined,
    )
    const lists = await podLists(kube)
    t.diagnostic(`pod lists answered after the restart: ${lists} (the server's own: ${ownLists})`)
    assert.equal(lists, ownLists + 1, 'one relist after 410 Gone, not one per attempt')
    assert.equal(pods.byContainerId(elsewhere.containers[0]!.id), undefined, 'still this node only')
  })
})

/**
 * The cgroup kubelet (cgroupfs driver) makes for a container of a pod without resource
 * requests: kubepods/besteffort/pod<uid>/<container id>. The levels this made are removed.
 */
function kubeletCgroup(podUid: string, id: string) {
  const made: string[] = []
  let path = findCgroup2Mount()
  for (const level of ['kubepods', 'besteffort', `pod${podUid}`, id]) {
    path = join(path, level)
    try {
      mkdirSync(path)
      made.push(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  return {
    /** Runs argv inside the cgroup; resolves with its pid once it exits. */
    run(argv: string[]): Promise<number> {
      return new Promise((resolve, reject) => {
        const child = spawn(
          '/bin/sh',
          ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', path, ...argv],
          {
            stdio: 'ignore',
          },
        )
        child.on('error', reject)
        child.on('close', () => resolve(child.pid!))
      })
    },
    async remove() {
      for (
        let i = 0;
        i < 100 && readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() !== '';
        i++
      )
        await new Promise((r) => setTimeout(r, 20))
      // Innermost first; a level another test also uses (ENOTEMPTY) stays.
      for (const d of made.reverse()) {
        try {
          rmdirSync(d)
        } catch {}
      }
    },
  }
}

const noKernel = skip || (isRoot() ? false : 'needs root to load BPF programs and create cgroups')

describe('exec events named after a pod of the real API server (real kernel capture)', {
  skip: noKernel,
  timeout: 120_000,
}, () => {
  it('names the namespace, pod, uid, container, workload and function the server holds', async () => {
    const kube = KubeApiServer.start()
    const sink = new RecordingSink()
    let enrichment: Enrichment | undefined
    let capture: KernelCapture | undefined
    let cg: ReturnType<typeof kubeletCgroup> | undefined
    try {
      const id = containerId()
      const pod = await kube.createPod({
        namespace: 'openfaas-fn',
        name: 'figlet-6b7c9d8f5-abcde',
        nodeName: NODE,
        owner: { kind: 'ReplicaSet', name: 'figlet-6b7c9d8f5' },
        labels: { faas_function: 'figlet', 'pod-template-hash': '6b7c9d8f5' },
        containers: [{ name: 'figlet', id, image: 'ghcr.io/openfaas/figlet:latest' }],
      })
      const uid = pod.metadata!.uid!
      enrichment = startEnrichment(
        loadEnrichConfig({ kubeconfig: kube.kubeconfig, nodeName: NODE, kubeBackoffMs: '100' }, {}),
        sink,
        logger,
      )
      capture = KernelCapture.start(
        loadCollectorConfig({ families: 'exec', flushMs: '10', counterIntervalMs: '3600000' }, {}),
        enrichment.enricher,
        logger,
      )
      await until('the pod in the cache', () => enrichment!.pods!.byUid(uid) !== undefined)
      cg = kubeletCgroup(uid, id)
      const marker = `ebbflow-apiserver-${randomUUID()}`
      await cg.run(['/bin/true', marker])
      const isIt = (e: CapturedEvent): e is ExecEvent =>
        e.kind === 'exec' && e.args.includes(marker) && e.filename === '/bin/true'
      await sink.waitFor((events) => events.some(isIt), 10_000, `the exec of ${marker}`)
      const exec = sink.events.find(isIt)!
      assert.equal(exec.meta?.unresolved, undefined)
      assert.equal(exec.meta?.node, NODE)
      assert.equal(exec.meta?.namespace, 'openfaas-fn')
      assert.equal(exec.meta?.pod, 'figlet-6b7c9d8f5-abcde')
      assert.equal(exec.meta?.podUid, uid)
      assert.equal(exec.meta?.cgroupPath, `/kubepods/besteffort/pod${uid}/${id}`)
      assert.equal(exec.meta?.containerId, id)
      assert.equal(exec.meta?.container, 'figlet')
      assert.equal(exec.meta?.image, 'ghcr.io/openfaas/figlet:latest')
      assert.equal(exec.meta?.workloadKind, 'Deployment')
      assert.equal(exec.meta?.workloadName, 'figlet')
      assert.equal(exec.meta?.function, 'figlet')
      assert.equal(exec.meta?.serviceAccount, 'default')
    } finally {
      await capture?.stop()
      await enrichment?.stop()
      await cg?.remove()
      kube.stop()
    }
  })
})
