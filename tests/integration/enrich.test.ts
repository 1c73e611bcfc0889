// The pod watch against the project's small list/watch server (support/fake-kube-api.ts), kept
// only for faults the real kube-apiserver cannot be made to give at the moment a test chooses:
// a watch the server ends while the connection stays healthy (its own timeout, cut short), and
// a change the watch never delivers followed by 410 Gone on the open watch. The start with no
// server there stays here too, because it is cheap: the real server can do it (stopped and
// started on its port), but the collector's backoff then adds some 20 s, and
// enrich-apiserver.test.ts already takes the same retry path when it restarts the real server
// under a watching collector. Everything else about naming events after pods (the real kernel
// capture, cgroup layouts, label changes, deletions, late metadata, exec sessions, an expired
// watch after a partition) runs against the real server in enrich-apiserver.test.ts.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { createLogger } from '@ebbflow/common'
import { RecordingSink } from '../support/capture.ts'
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
  return loadEnrichConfig({ kubeconfig, kubeBackoffMs: '50', cgroupRescanMinMs: '0', ...extra }, {})
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

describe('pod list+watch through the thin Kubernetes client', () => {
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
      enrichment = startEnrichment(enrichConfig(api.kubeconfig()), sink, logger, { nodeName: NODE })
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

      // A pod deleted while only a relist can tell: missing from the new list = deleted.
      await until('a watch after the relist', () => api.openWatches > 0)
      const uid4 = randomUUID()
      api.add(
        makePod({
          uid: uid4,
          name: 'short-lived',
          namespace: 'shop',
          nodeName: NODE,
          containers: [{ name: 'x', id: randomBytes(32).toString('hex'), image: 'x' }],
        }),
      )
      await until('ADDED before the silent deletion', () => pods.byUid(uid4) !== undefined)
      api.deleteSilently(uid4)
      api.gone()
      await until(
        'the deletion seen by the relist',
        () => pods.byUid(uid4)?.deletedAt !== undefined,
      )
      assert.equal(pods.byUid('11111111-1111-4111-8111-111111111111')?.deletedAt, undefined)
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
    const enrichment = startEnrichment(enrichConfig(kubeconfig), sink, logger, { nodeName: NODE })
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

describe('host mode', () => {
  it('starts without Kubernetes and names the systemd unit or the container', () => {
    const sink = new RecordingSink()
    const enrichment = startEnrichment(loadEnrichConfig({ kubernetes: 'off' }, {}), sink, logger, {
      nodeName: NODE,
    })
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
