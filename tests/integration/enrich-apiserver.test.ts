// Naming pods against a real kube-apiserver (etcd behind it, RBAC on): the collector's pod
// watch (kube-client.ts and PodWatcher: list, watch with bookmarks, relist on 410) sees what the test creates,
// binds, changes and deletes, through the server's own field selectors, resource versions and
// watch cache; and, with the real kernel capture, exec events in cgroups laid out as kubelet
// lays them out are named after those pods, also across a network partition during which etcd
// is compacted (410 Gone on resume). enrich.test.ts keeps the project's small list/watch server
// only for what a real server cannot be made to do on demand: a watch the server ends while the
// connection stays healthy, a change the watch never delivers followed by 410 Gone on the open
// watch, and an API server that is not there at start.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { type CapturedEvent, createLogger, type ExecEvent, findCgroup2Mount } from '@ebbflow/common'
import { isRoot, RecordingSink } from '../support/capture.ts'
import { CuttableProxy } from '../support/cuttable-proxy.ts'
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
    { kubeconfig, kubeBackoffMs: '100', deletedPodGraceMs: '60000' },
    {},
  )
  return startEnrichment(config, new RecordingSink(), logger, { nodeName: NODE })
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
 * A cgroup as kubelet makes it: by default `<mount>/kubepods/burstable/pod<uid>/<id>` (the
 * cgroupfs driver), or the given levels (the systemd driver's slices and scopes).
 */
function kubeletCgroup(
  podUid: string,
  containerId: string,
  levels = ['kubepods', 'burstable', `pod${podUid}`, containerId],
) {
  const made: string[] = []
  let dir = findCgroup2Mount()
  for (const level of levels) {
    dir = join(dir, level)
    if (!existsSync(dir)) {
      mkdirSync(dir)
      made.push(dir)
    }
  }
  const path = dir
  return {
    path,
    /** Starts argv inside the cgroup, from this process (outside the cgroup's tree). */
    start(argv: string[]) {
      return spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', path, ...argv], {
        stdio: 'ignore',
      })
    },
    /** Runs argv inside the cgroup; resolves with its pid once it exits. */
    run(argv: string[]): Promise<number> {
      return new Promise((resolve, reject) => {
        const child = this.start(argv)
        child.on('error', reject)
        child.on('close', () => resolve(child.pid!))
      })
    },
    async remove() {
      for (let i = 0; i < 100; i++) {
        if (readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() === '') break
        await new Promise((r) => setTimeout(r, 20))
      }
      // Innermost first; a level someone else also uses (ENOTEMPTY) stays.
      for (const d of made.reverse()) {
        try {
          rmdirSync(d)
        } catch {}
      }
    },
  }
}

const noKernel = skip || (isRoot() ? false : 'needs root to load BPF programs and create cgroups')

/** Requests without limits: the server makes the pod Burstable, as its cgroup says. */
const BURSTABLE = { cpu: '10m' }

// One server for the whole describe, its pods served without the watch cache (straight from
// etcd), so that compacting etcd expires a resource version at once; the collector reaches it
// through a proxy the test can cut while the server keeps taking writes.
describe('exec events named after a pod of the real API server (real kernel capture)', {
  skip: noKernel,
  timeout: 180_000,
}, () => {
  let kube: KubeApiServer
  let proxy: CuttableProxy
  let sink: RecordingSink
  let enrichment: Enrichment
  let capture: KernelCapture
  const cgroups: ReturnType<typeof kubeletCgroup>[] = []
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
    requests: BURSTABLE,
    containers: [{ name: 'api', id: containerId(), image: 'ghcr.io/shop/checkout:1.4.2' }],
  } satisfies TestPod
  let checkoutUid = ''

  before(async () => {
    kube = KubeApiServer.start({ apiserverArgs: ['--watch-cache-sizes=pods#0'] })
    const server = new URL(kube.server)
    proxy = await CuttableProxy.start({ host: server.hostname, port: Number(server.port) })
    const kubeconfig = join(kube.dir, 'via-proxy.kubeconfig')
    writeFileSync(
      kubeconfig,
      readFileSync(kube.kubeconfig, 'utf8').replace(kube.server, `https://127.0.0.1:${proxy.port}`),
      { mode: 0o600 },
    )
    sink = new RecordingSink()
    enrichment = startEnrichment(
      loadEnrichConfig(
        {
          kubeconfig,
          kubeBackoffMs: '50',
          cgroupRescanMinMs: '0',
          deletedPodGraceMs: '1000',
          lateMetadataMs: '2000',
        },
        {},
      ),
      sink,
      logger,
      { nodeName: NODE },
    )
    capture = KernelCapture.start(
      loadCollectorConfig({ families: 'exec', flushMs: '10', counterIntervalMs: '3600000' }, {}),
      enrichment.enricher,
      logger,
    )
  })
  after(async () => {
    await capture?.stop()
    await enrichment?.stop()
    await proxy?.close()
    kube?.stop()
    // Newest first: the first one made the shared kubepods levels.
    for (const cg of cgroups.reverse()) await cg.remove()
  })

  async function execIn(
    cg: ReturnType<typeof kubeletCgroup>,
    timeoutMs = 10_000,
  ): Promise<ExecEvent> {
    const marker = `ebbflow-apiserver-${randomUUID()}`
    await cg.run(['/bin/true', marker])
    let found: ExecEvent | undefined
    const isIt = (e: CapturedEvent): e is ExecEvent =>
      e.kind === 'exec' && e.args.includes(marker) && e.filename === '/bin/true'
    await sink.waitFor(
      (events) => {
        found = events.find(isIt)
        return found !== undefined
      },
      timeoutMs,
      `the exec of ${marker}`,
    )
    return found!
  }

  it('names the namespace, pod, uid, container, image, workload, labels, function and QoS class the server holds', async () => {
    const created = await kube.createPod(checkout)
    checkoutUid = created.metadata!.uid!
    assert.equal(created.status?.qosClass, 'Burstable')
    await until('the pod in the cache', () => enrichment.pods!.byUid(checkoutUid) !== undefined)
    const id = checkout.containers[0]!.id
    const cg = kubeletCgroup(checkoutUid, id)
    cgroups.push(cg)
    const exec = await execIn(cg)
    assert.deepEqual(exec.meta, {
      node: NODE,
      cgroupPath: `/kubepods/burstable/pod${checkoutUid}/${id}`,
      podUid: checkoutUid,
      qosClass: 'burstable',
      containerId: id,
      runtime: 'containerd',
      namespace: checkout.namespace,
      pod: checkout.name,
      workloadKind: 'Deployment',
      workloadName: 'checkout',
      serviceAccount: checkout.serviceAccount,
      labels: checkout.labels,
      function: 'resize-image',
      functionRevision: 'resize-image-00001',
      container: 'api',
      image: checkout.containers[0]!.image,
    })
  })

  it('names a CRI-O container under the systemd driver (slices and a crio-<id>.scope)', async () => {
    const id = containerId()
    const pod = await kube.createPod({
      namespace: 'bank',
      name: 'ledger-0',
      nodeName: NODE,
      owner: { kind: 'StatefulSet', name: 'ledger' },
      containers: [{ name: 'db', id, image: 'quay.io/bank/ledger:7', runtime: 'cri-o' }],
    })
    const uid = pod.metadata!.uid!
    assert.equal(pod.status?.qosClass, 'BestEffort')
    await until('the pod in the cache', () => enrichment.pods!.byContainerId(id) !== undefined)
    const cg = kubeletCgroup(uid, id, [
      'kubepods.slice',
      'kubepods-besteffort.slice',
      `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`,
      `crio-${id}.scope`,
    ])
    cgroups.push(cg)
    const exec = await execIn(cg)
    assert.equal(exec.meta?.namespace, 'bank')
    assert.equal(exec.meta?.pod, 'ledger-0')
    assert.equal(exec.meta?.podUid, uid)
    assert.equal(exec.meta?.container, 'db')
    assert.equal(exec.meta?.containerId, id)
    assert.equal(exec.meta?.runtime, 'crio', 'spelled as the cgroup path spells it')
    assert.equal(exec.meta?.qosClass, 'besteffort')
    assert.equal(exec.meta?.workloadKind, 'StatefulSet')
    assert.equal(exec.meta?.workloadName, 'ledger')
    assert.equal(exec.meta?.serviceAccount, 'default')
    assert.equal(exec.meta?.unresolved, undefined)
  })

  it('follows a label change: new labels and revision on the next events', async () => {
    await kube.setLabels(checkout.namespace, checkout.name, {
      ...checkout.labels,
      'serving.knative.dev/revision': 'resize-image-00002',
      canary: 'true',
    })
    await until(
      'the new labels',
      () => enrichment.pods!.byUid(checkoutUid)?.labels.canary === 'true',
    )
    const exec = await execIn(cgroups[0]!)
    assert.equal(exec.meta?.functionRevision, 'resize-image-00002')
    assert.equal(exec.meta?.labels?.canary, 'true')
    assert.equal(exec.meta?.unresolved, undefined)
  })

  it('names an event whose pod is bound to this node 500 ms after it (late metadata)', async () => {
    const late = {
      namespace: 'openfaas-fn',
      name: 'figlet-6b7c9d8f5-abcde',
      nodeName: NODE,
      owner: { kind: 'ReplicaSet', name: 'figlet-6b7c9d8f5' },
      labels: { faas_function: 'figlet', 'pod-template-hash': '6b7c9d8f5' },
      containers: [{ name: 'figlet', id: containerId(), image: 'ghcr.io/openfaas/figlet:latest' }],
    } satisfies TestPod
    // Not yet scheduled: no node's list holds it, but it has its uid for the cgroup.
    const uid = (await kube.createUnscheduledPod(late)).metadata!.uid!
    const cg = kubeletCgroup(uid, late.containers[0]!.id)
    cgroups.push(cg)
    const exec = execIn(cg)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(enrichment.pods!.byUid(uid), undefined, 'the collector does not know it yet')
    assert.equal(
      sink.of('exec').filter((e) => e.cgroupId !== 0 && e.meta?.podUid === uid).length,
      0,
      'nothing from the container went out before its pod was known',
    )
    await kube.bind(late)
    const event = await exec
    assert.equal(event.meta?.unresolved, undefined)
    assert.equal(event.meta?.namespace, 'openfaas-fn')
    assert.equal(event.meta?.pod, late.name)
    assert.equal(event.meta?.podUid, uid)
    assert.equal(event.meta?.container, 'figlet')
    assert.equal(event.meta?.workloadKind, 'Deployment')
    assert.equal(event.meta?.workloadName, 'figlet')
    assert.equal(event.meta?.function, 'figlet')
    assert.ok(enrichment.enricher.stats().resolvedLate > 0)
  })

  it('gives a process entering the container from outside (kubectl exec) a session id, shared by its children only', async () => {
    const id = containerId()
    const pod = await kube.createPod({
      namespace: 'shop',
      name: 'session-pod',
      nodeName: NODE,
      containers: [{ name: 'sh', id, image: 'busybox:1.36' }],
    })
    const uid = pod.metadata!.uid!
    await until('the pod in the cache', () => enrichment.pods!.byContainerId(id) !== undefined)
    const cg = kubeletCgroup(uid, id)
    cgroups.push(cg)
    const main = cg.start(['/bin/sh', '-c', `/bin/true own-${uid}; exec sleep 30`])
    try {
      const execs = () => sink.of('exec').filter((e) => e.meta?.containerId === id)
      await sink.waitFor(
        () => execs().some((e) => e.filename === '/bin/sleep' || e.args[0] === 'sleep'),
        10_000,
        'the container’s main process',
      )
      const marker = `session-${randomUUID()}`
      const leaderPid = await cg.run([
        '/bin/sh',
        '-c',
        `/bin/true ${marker}; /bin/true ${marker}; exit 0`,
        marker,
      ])
      await sink.waitFor(
        () => sink.of('exit').some((e) => e.tgid === leaderPid && e.meta?.containerId === id),
        10_000,
        'the session to end',
      )
      const own = execs().filter((e) => e.args.includes(`own-${uid}`))
      assert.equal(own.length, 1)
      assert.equal(
        own[0]!.meta?.session,
        undefined,
        'the container’s own processes have no session',
      )
      const leader = execs().find((e) => e.tgid === leaderPid)!
      const session = leader.meta?.session
      assert.ok(session, 'the process that entered from outside starts a session')
      assert.equal(leader.meta?.pod, 'session-pod')
      const children = execs().filter((e) => e.filename === '/bin/true' && e.args.includes(marker))
      assert.equal(children.length, 2)
      for (const c of children) assert.equal(c.meta?.session, session, 'children carry it')
      const end = sink.of('exit').find((e) => e.tgid === leaderPid)!
      assert.equal(end.meta?.session, session, 'the leader’s exit ends it')
    } finally {
      main.kill('SIGKILL')
    }
  })

  it('resumes a watch expired while cut off (etcd compacted: 410 Gone) with one relist and no gap', async (t) => {
    const watcher = enrichment.watcher!
    await until('the watch', () => watcher.stats().connected)
    const listsBefore = await podLists(kube)
    const failedBefore = watcher.stats().listsOrWatchesFailed
    proxy.cut()
    await until(
      'the collector to notice the cut',
      () => watcher.stats().listsOrWatchesFailed > failedBefore,
    )
    // Written while the collector cannot see the server: a pod of its node (created, then its
    // container reported running), a label change, and then every older version compacted away.
    const during = {
      namespace: 'shop',
      name: 'during-outage-0',
      nodeName: NODE,
      owner: { kind: 'StatefulSet', name: 'during-outage' },
      containers: [{ name: 'db', id: containerId(), image: 'postgres:17' }],
    } satisfies TestPod
    const duringUid = (await kube.createPod(during)).metadata!.uid!
    await kube.setLabels(checkout.namespace, checkout.name, { ...checkout.labels, version: 'cut' })
    const revision = await kube.compactEtcd()
    t.diagnostic(`etcd compacted at revision ${revision}`)
    assert.equal(enrichment.pods!.byUid(duringUid), undefined, 'nothing reached the collector')
    const attemptsWhileCut = watcher.stats().listsOrWatchesFailed - failedBefore
    proxy.restore()
    await until(
      'the pod created during the outage',
      () => enrichment.pods!.byUid(duringUid) !== undefined,
      40_000,
    )
    await until(
      'the label set during the outage',
      () => enrichment.pods!.byUid(checkoutUid)?.labels.version === 'cut',
    )
    const cg = kubeletCgroup(duringUid, during.containers[0]!.id)
    cgroups.push(cg)
    const exec = await execIn(cg)
    assert.equal(exec.meta?.unresolved, undefined)
    assert.equal(exec.meta?.pod, during.name)
    assert.equal(exec.meta?.workloadKind, 'StatefulSet')
    const lists = (await podLists(kube)) - listsBefore
    t.diagnostic(`failed attempts while cut: ${attemptsWhileCut}; pod lists after: ${lists}`)
    assert.ok(attemptsWhileCut >= 1)
    assert.equal(lists, 1, 'one relist after 410 Gone, however many attempts failed while cut')
  })

  it('keeps a deleted pod’s name for the grace period, and flags events after it', async () => {
    await kube.deletePod(checkout.namespace, checkout.name)
    await until('the deletion', () => enrichment.pods!.byUid(checkoutUid)?.deletedAt !== undefined)
    const during = await execIn(cgroups[0]!)
    assert.equal(during.meta?.pod, checkout.name, 'still named within the grace period')
    assert.equal(during.meta?.unresolved, undefined)
    await until(
      'the grace period to end',
      () => enrichment.pods!.byUid(checkoutUid) === undefined,
      5000,
    )
    const started = Date.now()
    const afterGrace = await execIn(cgroups[0]!)
    assert.ok(Date.now() - started >= 1500, 'held for the late-metadata wait first')
    assert.equal(afterGrace.meta?.unresolved, true)
    assert.equal(afterGrace.meta?.pod, undefined)
    assert.equal(
      afterGrace.meta?.containerId,
      checkout.containers[0]!.id,
      'what the cgroup says is still there',
    )
    assert.equal(afterGrace.meta?.podUid, checkoutUid)
  })
})
