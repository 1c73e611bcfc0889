// Naming events after pods: a local API server speaking the real list/watch protocol for pods,
// @kubernetes/client-node unchanged in front of it, cgroups laid out as kubelet's cgroupfs
// driver does, and (as root) the real kernel capture with the Enricher in front of a sink.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { type CapturedEvent, createLogger, type ExecEvent, findCgroup2Mount } from '@ebbflow/common'
import { isRoot, RecordingSink } from '../support/capture.ts'
import { FakeKubeApi, makePod } from '../support/fake-kube-api.ts'

const NODE = 'node-under-test'
const logger = createLogger('test', 'silent')

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function enrichConfig(kubeconfig: string, extra: Record<string, string> = {}) {
  return loadEnrichConfig(
    { kubeconfig, nodeName: NODE, kubeBackoffMs: '50', cgroupRescanMinMs: '0', ...extra },
    {},
  )
}

function deploymentPod(uid: string, containerId: string, labels: Record<string, string> = {}) {
  return makePod({
    uid,
    name: 'checkout-7d9f8b6c5-x2x9k',
    namespace: 'shop',
    nodeName: NODE,
    owner: { kind: 'ReplicaSet', name: 'checkout-7d9f8b6c5' },
    serviceAccount: 'checkout',
    labels: {
      app: 'checkout',
      'pod-template-hash': '7d9f8b6c5',
      'serving.knative.dev/service': 'resize-image',
      'serving.knative.dev/revision': 'resize-image-00001',
      ...labels,
    },
    containers: [{ name: 'api', id: containerId, image: 'ghcr.io/shop/checkout:1.4.2' }],
  })
}

describe('pod list+watch through @kubernetes/client-node', () => {
  it('lists only this node’s pods, follows ADDED/MODIFIED/DELETED, and relists on 410 Gone', async () => {
    const api = await FakeKubeApi.start()
    const sink = new RecordingSink()
    let enrichment: Enrichment | undefined
    try {
      const id = randomBytes(32).toString('hex')
      api.add(deploymentPod('11111111-1111-4111-8111-111111111111', id))
      api.add(
        makePod({
          uid: '22222222-2222-4222-8222-222222222222',
          name: 'elsewhere',
          nodeName: 'another-node',
          containers: [{ name: 'x', id: randomBytes(32).toString('hex'), image: 'x' }],
        }),
      )
      enrichment = startEnrichment(enrichConfig(api.kubeconfig()), sink, logger)
      const pods = enrichment.pods!
      await until('the first list', () => pods.size > 0)
      assert.equal(pods.size, 1, 'the other node’s pod is not listed')
      assert.equal(pods.byContainerId(id)?.pod.workloadName, 'checkout')
      assert.ok(
        api.requests.some((r) => r.query.fieldSelector === `spec.nodeName=${NODE}`),
        'list and watch ask for this node only',
      )
      await until('a watch', () => api.openWatches > 0)

      const uid2 = randomUUID()
      api.add(deploymentPod(uid2, randomBytes(32).toString('hex')))
      await until('ADDED', () => pods.byUid(uid2) !== undefined)
      api.modify(deploymentPod(uid2, randomBytes(32).toString('hex'), { version: 'v2' }))
      await until('MODIFIED', () => pods.byUid(uid2)?.labels.version === 'v2')
      api.delete(uid2)
      await until('DELETED', () => pods.byUid(uid2)?.deletedAt !== undefined)

      // The watch is cut (as at the API server's timeout): resumed from the last version.
      const watches = api.requests.filter((r) => r.query.watch === 'true').length
      api.endWatches()
      await until(
        'the watch to resume',
        () => api.requests.filter((r) => r.query.watch === 'true').length > watches,
      )
      const resumed = api.requests.filter((r) => r.query.watch === 'true').at(-1)!
      assert.notEqual(resumed.query.resourceVersion, '', 'resumed, not relisted')
      const uid3 = randomUUID()
      api.add(deploymentPod(uid3, randomBytes(32).toString('hex')))
      await until('ADDED after the resume', () => pods.byUid(uid3) !== undefined)

      // A change the watch never delivers, then 410: only a relist can bring it.
      const lists = api.requests.filter((r) => r.query.watch === undefined).length
      api.setSilently(deploymentPod('11111111-1111-4111-8111-111111111111', id, { version: 'v3' }))
      api.gone()
      await until(
        'the relist after 410',
        () => pods.byUid('11111111-1111-4111-8111-111111111111')?.labels.version === 'v3',
      )
      assert.ok(api.requests.filter((r) => r.query.watch === undefined).length > lists)
    } finally {
      await enrichment?.stop()
      await api.close()
    }
  })

  it('starts with the API server down, keeps retrying with backoff, and fills in once it is up', async () => {
    const probe = await FakeKubeApi.start()
    const kubeconfig = probe.kubeconfig()
    const port = probe.port
    // Keep the kubeconfig file: close the server but not its folder until the end.
    const sink = new RecordingSink()
    await new Promise<void>((resolve) => {
      // biome-ignore lint/suspicious/noExplicitAny: reaching the server to close it alone
      ;(probe as any).server.close(() => resolve())
    })
    const enrichment = startEnrichment(enrichConfig(kubeconfig), sink, logger)
    let api: FakeKubeApi | undefined
    try {
      await until(
        'two failed attempts',
        () => enrichment.watcher!.stats().listsOrWatchesFailed >= 2,
      )
      assert.equal(enrichment.mode, 'kubernetes')
      api = await FakeKubeApi.start(port)
      const uid = randomUUID()
      api.add(deploymentPod(uid, randomBytes(32).toString('hex')))
      await until('the pod once the API is up', () => enrichment.pods!.byUid(uid) !== undefined)
      assert.ok(enrichment.watcher!.stats().restarts >= 1)
    } finally {
      await enrichment.stop()
      await api?.close()
      await probe.close().catch(() => {})
    }
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
  const mount = findCgroup2Mount()
  const made: string[] = []
  let dir = mount
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

const skip = isRoot() ? false : 'needs root to load BPF programs and create cgroups'

describe('exec events named after their pod (real kernel capture)', { skip }, () => {
  let api: FakeKubeApi
  let sink: RecordingSink
  let enrichment: Enrichment
  let capture: KernelCapture
  const cgroups: ReturnType<typeof kubeletCgroup>[] = []
  const podUid = randomUUID()
  const containerId = randomBytes(32).toString('hex')

  before(async () => {
    api = await FakeKubeApi.start()
    sink = new RecordingSink()
    enrichment = startEnrichment(
      enrichConfig(api.kubeconfig(), { deletedPodGraceMs: '1000', lateMetadataMs: '2000' }),
      sink,
      logger,
    )
    const config = loadCollectorConfig(
      { families: 'exec', flushMs: '10', counterIntervalMs: '3600000' },
      {},
    )
    capture = KernelCapture.start(config, enrichment.enricher, logger)
  })
  after(async () => {
    await capture?.stop()
    await enrichment?.stop()
    await api?.close()
    // Newest first: the first one made the shared kubepods/burstable levels.
    for (const cg of cgroups.reverse()) await cg.remove()
  })

  async function execIn(
    cg: ReturnType<typeof kubeletCgroup>,
    timeoutMs = 10_000,
  ): Promise<ExecEvent> {
    const marker = `ebbflow-enrich-${randomUUID()}`
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

  it('names the namespace, pod, container, image, workload, labels and function', async () => {
    api.add(deploymentPod(podUid, containerId))
    await until(
      'the pod in the cache',
      () => enrichment.pods!.byContainerId(containerId) !== undefined,
    )
    const cg = kubeletCgroup(podUid, containerId)
    cgroups.push(cg)
    const exec = await execIn(cg)
    assert.deepEqual(exec.meta, {
      node: NODE,
      cgroupPath: `/kubepods/burstable/pod${podUid}/${containerId}`,
      podUid,
      qosClass: 'burstable',
      containerId,
      runtime: 'containerd',
      namespace: 'shop',
      pod: 'checkout-7d9f8b6c5-x2x9k',
      workloadKind: 'Deployment',
      workloadName: 'checkout',
      serviceAccount: 'checkout',
      labels: {
        app: 'checkout',
        'pod-template-hash': '7d9f8b6c5',
        'serving.knative.dev/revision': 'resize-image-00001',
        'serving.knative.dev/service': 'resize-image',
      },
      function: 'resize-image',
      functionRevision: 'resize-image-00001',
      container: 'api',
      image: 'ghcr.io/shop/checkout:1.4.2',
    })
  })

  it('names a CRI-O container under the systemd driver (slices and a crio-<id>.scope)', async () => {
    const uid = randomUUID()
    const id = randomBytes(32).toString('hex')
    api.add(
      makePod({
        uid,
        name: 'ledger-0',
        namespace: 'bank',
        nodeName: NODE,
        owner: { kind: 'StatefulSet', name: 'ledger' },
        containers: [{ name: 'db', id, image: 'quay.io/bank/ledger:7', runtime: 'cri-o' }],
      }),
    )
    await until('the pod in the cache', () => enrichment.pods!.byContainerId(id) !== undefined)
    const slice = `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`
    const cg = kubeletCgroup(uid, id, [
      'kubepods.slice',
      'kubepods-besteffort.slice',
      slice,
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
    assert.equal(exec.meta?.unresolved, undefined)
  })

  it('follows MODIFIED: new labels and revision on the next events', async () => {
    api.modify(
      deploymentPod(podUid, containerId, {
        'serving.knative.dev/revision': 'resize-image-00002',
        canary: 'true',
      }),
    )
    await until('the modified pod', () => enrichment.pods!.byUid(podUid)?.labels.canary === 'true')
    const exec = await execIn(cgroups[0]!)
    assert.equal(exec.meta?.functionRevision, 'resize-image-00002')
    assert.equal(exec.meta?.labels?.canary, 'true')
    assert.equal(exec.meta?.unresolved, undefined)
  })

  it('keeps a deleted pod’s name for the grace period, and flags events after it', async () => {
    api.delete(podUid)
    await until('the deletion', () => enrichment.pods!.byUid(podUid)?.deletedAt !== undefined)
    const during = await execIn(cgroups[0]!)
    assert.equal(
      during.meta?.pod,
      'checkout-7d9f8b6c5-x2x9k',
      'still named within the grace period',
    )
    assert.equal(during.meta?.unresolved, undefined)
    await until('the grace period to end', () => enrichment.pods!.byUid(podUid) === undefined, 5000)
    const started = Date.now()
    const afterGrace = await execIn(cgroups[0]!)
    assert.ok(Date.now() - started >= 1500, 'held for the late-metadata wait first')
    assert.equal(afterGrace.meta?.unresolved, true)
    assert.equal(afterGrace.meta?.pod, undefined)
    assert.equal(afterGrace.meta?.containerId, containerId, 'what the cgroup says is still there')
    assert.equal(afterGrace.meta?.podUid, podUid)
  })

  it('names an event whose pod appears 500 ms after it (late metadata)', async () => {
    const lateUid = randomUUID()
    const lateId = randomBytes(32).toString('hex')
    const cg = kubeletCgroup(lateUid, lateId)
    cgroups.push(cg)
    const exec = execIn(cg)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(
      sink.of('exec').filter((e) => e.cgroupId !== 0 && e.meta?.podUid === lateUid).length,
      0,
      'nothing from the container went out before its pod was known',
    )
    api.add(
      makePod({
        uid: lateUid,
        name: 'figlet-6b7c9d8f5-abcde',
        namespace: 'openfaas-fn',
        nodeName: NODE,
        owner: { kind: 'ReplicaSet', name: 'figlet-6b7c9d8f5' },
        labels: { faas_function: 'figlet', 'pod-template-hash': '6b7c9d8f5' },
        containers: [{ name: 'figlet', id: lateId, image: 'ghcr.io/openfaas/figlet:latest' }],
      }),
    )
    const event = await exec
    assert.equal(event.meta?.unresolved, undefined)
    assert.equal(event.meta?.namespace, 'openfaas-fn')
    assert.equal(event.meta?.pod, 'figlet-6b7c9d8f5-abcde')
    assert.equal(event.meta?.container, 'figlet')
    assert.equal(event.meta?.workloadKind, 'Deployment')
    assert.equal(event.meta?.workloadName, 'figlet')
    assert.equal(event.meta?.function, 'figlet')
    assert.ok(enrichment.enricher.stats().resolvedLate > 0)
  })
})

describe('kubectl exec sessions (real kernel capture)', { skip }, () => {
  it('gives a process entering the container from outside a session id, shared by its children only', async () => {
    const api = await FakeKubeApi.start()
    const sink = new RecordingSink()
    const uid = randomUUID()
    const id = randomBytes(32).toString('hex')
    api.add(deploymentPod(uid, id))
    const enrichment = startEnrichment(enrichConfig(api.kubeconfig()), sink, logger)
    const config = loadCollectorConfig(
      { families: 'exec', flushMs: '10', counterIntervalMs: '3600000' },
      {},
    )
    const capture = KernelCapture.start(config, enrichment.enricher, logger)
    const cg = kubeletCgroup(uid, id)
    const main = cg.start(['/bin/sh', '-c', `/bin/true own-${uid}; exec sleep 30`])
    try {
      await until('the pod in the cache', () => enrichment.pods!.byContainerId(id) !== undefined)
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
      assert.equal(leader.meta?.pod, 'checkout-7d9f8b6c5-x2x9k')
      const children = execs().filter((e) => e.filename === '/bin/true' && e.args.includes(marker))
      assert.equal(children.length, 2)
      for (const c of children) assert.equal(c.meta?.session, session, 'children carry it')
      const end = sink.of('exit').find((e) => e.tgid === leaderPid)!
      assert.equal(end.meta?.session, session, 'the leader’s exit ends it')
    } finally {
      main.kill('SIGKILL')
      await capture.stop()
      await enrichment.stop()
      await api.close()
      await cg.remove()
    }
  })
})

describe('host mode', () => {
  it('starts without Kubernetes and names the systemd unit or the container', () => {
    const sink = new RecordingSink()
    const enrichment = startEnrichment(
      loadEnrichConfig({ kubernetes: 'off', nodeName: NODE }, {}),
      sink,
      logger,
    )
    try {
      assert.equal(enrichment.mode, 'host')
      enrichment.enricher.counters([
        { kind: 'drops', bootNs: 1, family: 'exec', reason: 'buffer_full', count: 1 },
      ])
      assert.deepEqual(sink.events[0]?.kind === 'drops' && sink.events[0].meta, { node: NODE })
    } finally {
      void enrichment.stop()
    }
  })
})
