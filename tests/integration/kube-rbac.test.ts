// The collector's RBAC for real: infra/k8s/collector-rbac.yaml applied to a real kube-apiserver
// (RBAC on), the collector started with a token of the ServiceAccount it binds (`kubectl create
// token`, as the kubelet would mount it), and every request it should not be able to make tried
// with that token and refused by the server. Then all of infra/k8s stored for real: the API,
// the ingester and the alerter run as ServiceAccounts the server grants nothing, and of every
// ServiceAccount the cluster has, none may read the API's tokens Secret.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Enrichment, loadEnrichConfig, startEnrichment } from '@ebbflow/collector/enrich/index'
import { createLogger } from '@ebbflow/common'
import { RecordingSink } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const NODE = 'node-under-test'
const k8sDir = join(import.meta.dirname, '../../infra/k8s')
const rbacFile = join(k8sDir, 'collector-rbac.yaml')
/** What RBAC gives every authenticated user (system:basic-user): asking about itself. */
const SELF_REVIEWS = [
  'selfsubjectaccessreviews.authorization.k8s.io',
  'selfsubjectreviews.authentication.k8s.io',
  'selfsubjectrulesreviews.authorization.k8s.io',
]

// biome-ignore lint/suspicious/noExplicitAny: objects as the server returns them
type Obj = Record<string, any>

/** Resource → verbs, from `kubectl auth can-i --list` (non-resource URLs left out). */
function grants(table: string): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const line of table.split('\n').slice(1)) {
    const m = /^(\S+)\s+\[[^\]]*\]\s+\[[^\]]*\]\s+\[([^\]]*)\]/.exec(line)
    if (m) out[m[1]!] = m[2]!.split(' ').filter(Boolean).sort()
  }
  return out
}
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
        loadEnrichConfig({ kubeconfig, kubeBackoffMs: '100' }, {}),
        new RecordingSink(),
        logger,
        { nodeName: NODE },
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

  it('runs the API, the ingester and the alerter as ServiceAccounts granted nothing; none but the admin reads the API’s tokens', async () => {
    // Stored for real (no controller runs them here), as a cluster would hold them.
    await kube.kubectlOk(['apply', '-k', k8sDir])
    const stored = JSON.parse(
      await kube.kubectlOk([
        '-n',
        'ebbflow',
        'get',
        'deployments,daemonsets,cronjobs',
        '-o',
        'json',
      ]),
    ) as Obj
    const podSpec = (o: Obj): Obj =>
      o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec
    const workloads = new Map<string, Obj>(
      stored.items.map((o: Obj) => [`${o.kind}/${o.metadata.name}`, podSpec(o)]),
    )
    assert.deepEqual([...workloads.keys()].sort(), [
      'CronJob/ebbflow-alerter',
      'DaemonSet/ebbflow-collector',
      'Deployment/ebbflow-api',
      'Deployment/ebbflow-ingester',
    ])
    // The API's tokens reach it as a Secret volume, which kubelet reads with the node's
    // credentials: the API itself needs no token and no access to Secrets.
    const api = workloads.get('Deployment/ebbflow-api')!
    assert.deepEqual(
      api.volumes.find((v: Obj) => v.secret)?.secret.secretName,
      'ebbflow-api-tokens',
    )

    for (const name of [
      'Deployment/ebbflow-api',
      'Deployment/ebbflow-ingester',
      'CronJob/ebbflow-alerter',
    ]) {
      const spec = workloads.get(name)!
      assert.equal(spec.automountServiceAccountToken, false, `${name} gets no token mounted`)
      const sa = spec.serviceAccountName ?? 'default'
      // Even a token made for its ServiceAccount buys nothing.
      const token = await kube.token('ebbflow', sa)
      const list = await kube.kubectl(['auth', 'can-i', '--list', '-n', 'ebbflow'], { token })
      assert.equal(list.status, 0, list.stderr)
      assert.deepEqual(
        Object.keys(grants(list.stdout)).sort(),
        SELF_REVIEWS,
        `${name}: ${list.stdout}`,
      )
      for (const args of [
        ['get', 'secret', 'ebbflow-api-tokens'],
        ['get', 'secret', 'ebbflow-secrets'],
        ['get', 'configmap', 'ebbflow-config'],
        ['get', 'pods'],
        ['get', 'cronjobs'],
        ['create', 'job', 'x', '--from=cronjob/ebbflow-alerter'],
      ]) {
        const r = await kube.kubectl(['-n', 'ebbflow', ...args], { token })
        assert.notEqual(r.status, 0, `${name}: ${args.join(' ')} allowed`)
        assert.match(
          r.stderr,
          new RegExp(`"system:serviceaccount:ebbflow:${sa}" cannot`),
          `${name}: ${args.join(' ')}: ${r.stderr}`,
        )
      }
    }
    const collector = await kube.kubectl(['auth', 'can-i', '--list', '-n', 'shop'], { token })
    const g = grants(collector.stdout)
    assert.deepEqual(g.pods, ['get', 'list', 'watch'], collector.stdout)
    assert.deepEqual(
      Object.keys(g).sort(),
      [...SELF_REVIEWS, 'pods'].sort(),
      'pods and nothing else',
    )

    // Who may read the tokens: the server's answer for every ServiceAccount it holds.
    const accounts = JSON.parse(
      await kube.kubectlOk(['get', 'serviceaccounts', '-A', '-o', 'json']),
    ).items as Obj[]
    assert.ok(accounts.length >= 3, `${accounts.length} ServiceAccounts`)
    for (const a of accounts) {
      const user = `system:serviceaccount:${a.metadata.namespace}:${a.metadata.name}`
      const r = await kube.kubectl([
        'auth',
        'can-i',
        'get',
        'secret/ebbflow-api-tokens',
        '-n',
        'ebbflow',
        '--as',
        user,
      ])
      assert.equal(r.stdout.trim(), 'no', `${user} may read the API's tokens`)
    }
    const admin = await kube.kubectl([
      'auth',
      'can-i',
      'get',
      'secret/ebbflow-api-tokens',
      '-n',
      'ebbflow',
    ])
    assert.equal(admin.stdout.trim(), 'yes', 'the question itself can be answered yes')
  })
})
