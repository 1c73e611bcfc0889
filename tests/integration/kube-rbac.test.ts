// The collector's RBAC for real: infra/k8s/collector-rbac.yaml applied to a real kube-apiserver
// (RBAC on), the collector started with a token of the ServiceAccount it binds (`kubectl create
// token`, as the kubelet would mount it), and every request it should not be able to make tried
// with that token and refused by the server.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { createLogger } from '@ebbflow/common'
import { RecordingSink } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const NODE = 'node-under-test'
const rbacFile = join(import.meta.dirname, '../../infra/k8s/collector-rbac.yaml')
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

describe('the collector’s ServiceAccount against a real API server', {
  skip,
  timeout: 120_000,
}, () => {
  let kube: KubeApiServer
  let token = ''
  const pod = {
    namespace: 'shop',
    name: 'web-5d8c7b9f4-q2w4r',
    nodeName: NODE,
    owner: { kind: 'ReplicaSet', name: 'web-5d8c7b9f4' },
    labels: { app: 'web', 'pod-template-hash': '5d8c7b9f4' },
    containers: [{ name: 'nginx', id: randomBytes(32).toString('hex'), image: 'nginx:1.27' }],
  }

  before(async () => {
    kube = KubeApiServer.start()
    await kube.namespace('ebbflow')
    await kube.kubectlOk(['apply', '-f', rbacFile])
    token = await kube.token('ebbflow', 'ebbflow-collector')
    await kube.createPod(pod)
    await kube.kubectlOk([
      '-n',
      'ebbflow',
      'create',
      'secret',
      'generic',
      'ebbflow-api-tokens',
      '--from-literal=tokens.json={}',
    ])
  })
  after(() => kube?.stop())

  it('lists and watches its node’s pods with the token', async () => {
    let enrichment: Enrichment | undefined
    try {
      const kubeconfig = kube.kubeconfigWithToken(token, 'collector.kubeconfig')
      enrichment = startEnrichment(
        loadEnrichConfig({ kubeconfig, nodeName: NODE, kubeBackoffMs: '100' }, {}),
        new RecordingSink(),
        logger,
      )
      const pods = enrichment.pods!
      await until('the listed pod', () => pods.byContainerId(pod.containers[0]!.id) !== undefined)
      const id = randomBytes(32).toString('hex')
      const watched = await kube.createPod({
        ...pod,
        name: 'web-5d8c7b9f4-zz9xk',
        containers: [{ name: 'nginx', id, image: 'nginx:1.27' }],
      })
      // Created, then its containers reported running: the second change carries the id.
      await until('the watched pod', () => pods.byContainerId(id) !== undefined)
      assert.equal(pods.byContainerId(id)?.pod.uid, watched.metadata!.uid)
      assert.equal(pods.byContainerId(id)?.pod.workloadName, 'web')
      assert.equal(enrichment.watcher!.stats().listsOrWatchesFailed, 0, 'nothing was refused')
    } finally {
      await enrichment?.stop()
    }
  })

  it('is refused what the ClusterRole does not grant', async () => {
    const as = (args: string[]) => kube.kubectl(args, { token })
    const allowed = await as([
      'get',
      'pods',
      '-A',
      '--field-selector',
      `spec.nodeName=${NODE}`,
      '-o',
      'name',
    ])
    assert.equal(allowed.status, 0, allowed.stderr)
    assert.match(allowed.stdout, new RegExp(`pod/${pod.name}`), 'the token itself works')

    const refused: [string, string[], RegExp][] = [
      ['secrets', ['get', 'secrets', '-A'], /cannot list resource "secrets"/],
      [
        'the API’s tokens',
        ['-n', 'ebbflow', 'get', 'secret', 'ebbflow-api-tokens'],
        /cannot get resource "secrets"/,
      ],
      [
        'exec into a pod',
        ['-n', 'shop', 'exec', pod.name, '--', 'true'],
        /cannot create resource "pods\/exec"/,
      ],
      [
        'deleting a pod',
        ['-n', 'shop', 'delete', 'pod', pod.name],
        /cannot delete resource "pods"/,
      ],
      [
        'labelling a pod',
        ['-n', 'shop', 'label', 'pod', pod.name, 'x=y'],
        /cannot patch resource "pods"/,
      ],
      ['nodes', ['get', 'nodes'], /cannot list resource "nodes"/],
      ['configmaps', ['-n', 'ebbflow', 'get', 'configmaps'], /cannot list resource "configmaps"/],
      [
        'tokens of others',
        ['-n', 'ebbflow', 'create', 'token', 'default'],
        /cannot create resource "serviceaccounts\/token"/,
      ],
    ]
    for (const [what, args, message] of refused) {
      const r = await as(args)
      assert.notEqual(r.status, 0, `${what}: allowed`)
      assert.match(r.stderr, /forbidden/i, `${what}: ${r.stderr}`)
      assert.match(r.stderr, message, `${what}: ${r.stderr}`)
      assert.match(
        r.stderr,
        /system:serviceaccount:ebbflow:ebbflow-collector/,
        'refused as the collector',
      )
    }
  })

  it('leaves the other workloads’ ServiceAccount (default) without access to the API’s tokens', async () => {
    const other = await kube.token('ebbflow', 'default')
    const r = await kube.kubectl(['-n', 'ebbflow', 'get', 'secret', 'ebbflow-api-tokens'], {
      token: other,
    })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /system:serviceaccount:ebbflow:default" cannot get resource "secrets"/)
    const pods = await kube.kubectl(['get', 'pods', '-A'], { token: other })
    assert.match(pods.stderr, /cannot list resource "pods"/, 'only the collector reads pods')
  })
})
