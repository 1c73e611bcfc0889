// infra/k8s and the manifests the API generates, applied to a real kube-apiserver with
// `kubectl apply --dry-run=server`: admission, defaulting and validation by the server itself,
// not only the OpenAPI schemas manifests.test.ts checks against.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseAllDocuments } from 'yaml'
import { gql, type Harness, openHarness } from '../../services/api/test/harness.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'

const k8sDir = join(import.meta.dirname, '../../infra/k8s')
const kubeSh = join(import.meta.dirname, '../../infra/kube/kube.sh')
const skip = kubeApiServerUnavailable() ?? false

// biome-ignore lint/suspicious/noExplicitAny: objects as the server returns them
type Obj = Record<string, any>

describe('manifests applied to a real API server (server-side dry run)', {
  skip,
  timeout: 120_000,
}, () => {
  let kube: KubeApiServer
  let harness: Harness | undefined

  before(() => {
    kube = KubeApiServer.start()
  })
  after(async () => {
    await harness?.close()
    kube?.stop()
  })

  it('needs the namespace first: a dry run cannot create objects in a namespace it only pretends to create', async () => {
    const r = await kube.kubectl(['apply', '--dry-run=server', '-k', k8sDir])
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /namespaces "ebbflow" not found/)
  })

  it('accepts every object of infra/k8s, as kustomize renders them, once the namespace exists', async () => {
    const rendered = parseAllDocuments(await kube.kubectlOk(['kustomize', k8sDir]))
      .map((d) => d.toJSON() as Obj)
      .filter(Boolean)
    assert.ok(rendered.length >= 8, `rendered ${rendered.length} objects`)
    await kube.kubectlOk(['create', 'namespace', 'ebbflow'])
    const out = await kube.kubectlOk(['apply', '--dry-run=server', '-k', k8sDir, '-o', 'json'])
    const parsed = JSON.parse(out) as Obj
    const applied: Obj[] = parsed.kind === 'List' ? parsed.items : [parsed]
    const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
    assert.deepEqual(applied.map(key).sort(), rendered.map(key).sort())
    // What only a server adds: defaults, a uid, and nothing stored.
    for (const o of applied) assert.ok(o.metadata.uid, `${key(o)} went through the server`)
    const ds = applied.find((o) => o.kind === 'DaemonSet')!
    assert.equal(ds.spec.template.spec.dnsPolicy, 'ClusterFirst', 'defaulted by the server')
    assert.equal(ds.spec.updateStrategy.type, 'RollingUpdate')
    const stored = await kube.kubectl(['-n', 'ebbflow', 'get', 'daemonset', 'ebbflow-collector'])
    assert.match(stored.stderr, /NotFound|not found/, 'a dry run stores nothing')
    const api = applied.find((o) => o.kind === 'Deployment' && o.metadata.name === 'ebbflow-api')!
    assert.equal(
      api.spec.template.spec.automountServiceAccountToken,
      false,
      'the API gets no token',
    )
  })

  it('refuses a broken object (the dry run does validate)', async () => {
    const broken = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'broken', namespace: 'ebbflow' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        template: {
          metadata: { labels: { app: 'b' } },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      },
    }
    const r = await kube.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify(broken),
    })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /selector.*does not match template .*labels/)
  })

  it('accepts the NetworkPolicy that the API’s networkPolicy field generates', async () => {
    harness = await openHarness()
    const r = await gql(
      harness.api,
      `{ networkPolicy(namespace: "shop", pod: "web-1") { workloadName manifest } }`,
    )
    assert.equal(r.errors, undefined)
    const manifest = r.data.networkPolicy.manifest as Obj
    assert.equal(manifest.kind, 'NetworkPolicy')
    await kube.namespace(manifest.metadata.namespace ?? 'shop')
    const out = await kube.kubectlOk(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
      input: JSON.stringify(manifest),
    })
    const applied = JSON.parse(out) as Obj
    assert.equal(applied.metadata.name, manifest.metadata.name)
    assert.ok(applied.metadata.uid, 'went through the server')
    assert.deepEqual(applied.spec.podSelector, manifest.spec.podSelector)
    assert.deepEqual(applied.spec.policyTypes, manifest.spec.policyTypes)
  })

  it('accepts the SeccompProfile that the API’s seccompProfile field generates, under the Security Profiles Operator’s own CRD', async () => {
    // The CRD as the operator publishes it, from its Go module (scripts/setup.sh downloads it).
    const crds = execFileSync(kubeSh, ['spo-crds'], { encoding: 'utf8', timeout: 60_000 }).trim()
    await kube.kubectlOk(['apply', '--server-side', '-f', join(crds, 'seccompprofile.yaml')])
    await kube.kubectlOk([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      'crd/seccompprofiles.security-profiles-operator.x-k8s.io',
    ])
    harness ??= await openHarness()
    const r = await gql(
      harness.api,
      `{ seccompProfile(namespace: "shop", pod: "web-1") { manifest } }`,
    )
    assert.equal(r.errors, undefined)
    const manifest = r.data.seccompProfile.manifest as Obj
    assert.equal(manifest.kind, 'SeccompProfile')
    await kube.namespace('shop')
    const apply = (o: Obj) =>
      kube.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
        input: JSON.stringify(o),
      })
    const ok = await apply(manifest)
    assert.equal(ok.status, 0, ok.stderr)
    const applied = JSON.parse(ok.stdout) as Obj
    assert.equal(applied.apiVersion, manifest.apiVersion)
    assert.equal(applied.metadata.name, manifest.metadata.name)
    assert.ok(applied.metadata.uid, 'went through the server')
    const { disabled, ...kept } = applied.spec
    assert.equal(disabled, false, 'defaulted by the CRD')
    assert.deepEqual(kept, manifest.spec, 'nothing pruned: every field is in the CRD’s schema')
    const { 'kubectl.kubernetes.io/last-applied-configuration': _, ...annotations } =
      applied.metadata.annotations
    assert.deepEqual(annotations, manifest.metadata.annotations)
    // The CRD is cluster-scoped: the name carries the namespace so namespaces do not collide.
    assert.equal(applied.metadata.namespace, undefined)
    assert.equal(applied.metadata.name, 'shop-web')
    // The schema is enforced, so the acceptance above means something.
    const bad = await apply({
      ...manifest,
      spec: { ...manifest.spec, defaultAction: 'SCMP_ACT_MAYBE' },
    })
    assert.notEqual(bad.status, 0)
    assert.match(bad.stderr, /spec\.defaultAction: Unsupported value: "SCMP_ACT_MAYBE"/)
  })
})
