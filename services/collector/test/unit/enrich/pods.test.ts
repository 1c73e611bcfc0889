// Workload and function derivation from real-shaped pods, and the bounded pod index.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { V1Pod } from '@kubernetes/client-node'
import { functionOf, PodIndex, parseContainerId, workloadOf } from '../../../src/enrich/pods.ts'

const pod = (name: string, owner?: { kind: string; name: string }, labels = {}): V1Pod => ({
  metadata: {
    name,
    namespace: 'shop',
    uid: `uid-${name}`,
    labels,
    ownerReferences: owner
      ? [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: 'o', controller: true }]
      : [],
  },
})

describe('workloadOf', () => {
  const cases: { name: string; pod: V1Pod; want: { kind: string; name: string } }[] = [
    {
      name: 'Deployment through its ReplicaSet (pod-template-hash label)',
      pod: pod(
        'checkout-7d9f8b6c5-x2x9k',
        { kind: 'ReplicaSet', name: 'checkout-7d9f8b6c5' },
        { 'pod-template-hash': '7d9f8b6c5' },
      ),
      want: { kind: 'Deployment', name: 'checkout' },
    },
    {
      name: 'Deployment with dashes in its name, hash from the name alone',
      pod: pod('api-gw-v2-5c8d7fbd9-abcde', { kind: 'ReplicaSet', name: 'api-gw-v2-5c8d7fbd9' }),
      want: { kind: 'Deployment', name: 'api-gw-v2' },
    },
    {
      name: 'a bare ReplicaSet whose hash label does not match stays a ReplicaSet',
      pod: pod('rs-x', { kind: 'ReplicaSet', name: 'frontend' }, { 'pod-template-hash': 'zzz' }),
      want: { kind: 'ReplicaSet', name: 'frontend' },
    },
    {
      name: 'StatefulSet',
      pod: pod('db-0', { kind: 'StatefulSet', name: 'db' }),
      want: { kind: 'StatefulSet', name: 'db' },
    },
    {
      name: 'DaemonSet',
      pod: pod('ebbflow-4xk2p', { kind: 'DaemonSet', name: 'ebbflow' }),
      want: { kind: 'DaemonSet', name: 'ebbflow' },
    },
    {
      name: 'CronJob through its Job (scheduled time in minutes)',
      pod: pod('nightly-report-29012345-q8z7t', { kind: 'Job', name: 'nightly-report-29012345' }),
      want: { kind: 'CronJob', name: 'nightly-report' },
    },
    {
      name: 'a plain Job with a short number stays a Job',
      pod: pod('migrate-2-abcde', { kind: 'Job', name: 'migrate-2' }),
      want: { kind: 'Job', name: 'migrate-2' },
    },
    { name: 'a bare pod', pod: pod('debug'), want: { kind: 'Pod', name: 'debug' } },
    {
      name: 'a static pod (owned by its Node)',
      pod: pod('etcd-node1', { kind: 'Node', name: 'node1' }),
      want: { kind: 'Node', name: 'node1' },
    },
  ]
  for (const c of cases) it(c.name, () => assert.deepEqual(workloadOf(c.pod), c.want))
})

describe('functionOf', () => {
  const cases: {
    name: string
    labels: Record<string, string>
    extra?: string[]
    want: { function?: string; functionRevision?: string }
  }[] = [
    {
      name: 'Knative service and revision',
      labels: {
        'serving.knative.dev/service': 'resize-image',
        'serving.knative.dev/revision': 'resize-image-00003',
        'serving.knative.dev/configuration': 'resize-image',
      },
      want: { function: 'resize-image', functionRevision: 'resize-image-00003' },
    },
    {
      name: 'Knative revision of a bare Configuration',
      labels: {
        'serving.knative.dev/revision': 'thumb-00001',
        'serving.knative.dev/configuration': 'thumb',
      },
      want: { function: 'thumb', functionRevision: 'thumb-00001' },
    },
    {
      name: 'OpenFaaS',
      labels: { faas_function: 'figlet', app: 'figlet' },
      want: { function: 'figlet' },
    },
    {
      name: 'Fission',
      labels: { functionName: 'hello', functionNamespace: 'default', executorType: 'newdeploy' },
      want: { function: 'hello' },
    },
    {
      name: 'Kubeless',
      labels: { function: 'get-python', created_by: 'kubeless' },
      want: { function: 'get-python' },
    },
    {
      name: 'configured keys come first',
      labels: { 'example.com/fn': 'mine', faas_function: 'figlet' },
      extra: ['example.com/fn'],
      want: { function: 'mine' },
    },
    { name: 'no function', labels: { app: 'web' }, want: {} },
  ]
  for (const c of cases) it(c.name, () => assert.deepEqual(functionOf(c.labels, c.extra), c.want))
})

describe('parseContainerId', () => {
  it('splits the runtime prefix', () => {
    assert.deepEqual(parseContainerId('containerd://abc'), { runtime: 'containerd', id: 'abc' })
    assert.deepEqual(parseContainerId('cri-o://abc'), { runtime: 'crio', id: 'abc' })
    assert.equal(parseContainerId(''), undefined)
  })
})

const ID = (n: number) => n.toString(16).padStart(64, '0')

function fullPod(
  uid: string,
  name: string,
  ids: number[],
  extra: Partial<V1Pod['status']> = {},
): V1Pod {
  return {
    metadata: {
      uid,
      name,
      namespace: 'shop',
      labels: { app: name, tier: 'web', 'pod-template-hash': 'abc' },
    },
    spec: {
      nodeName: 'node1',
      serviceAccountName: 'sa',
      containers: ids.map((n) => ({ name: `c${n}`, image: `img${n}:1` })),
    },
    status: {
      containerStatuses: ids.map((n) => ({
        name: `c${n}`,
        image: `img${n}:1`,
        imageID: '',
        containerID: `containerd://${ID(n)}`,
        ready: true,
        restartCount: 0,
      })),
      ...extra,
    },
  }
}

describe('PodIndex', () => {
  const options = {
    labelAllowlist: [],
    maxLabels: 10,
    functionLabels: [],
    deletedGraceMs: 1000,
    maxPods: 3,
  }

  it('indexes by uid and by container id, init and ephemeral containers included', () => {
    const index = new PodIndex(options)
    index.upsert(
      fullPod('u1', 'a', [1], {
        initContainerStatuses: [
          {
            name: 'init',
            image: 'busybox',
            imageID: '',
            containerID: `containerd://${ID(2)}`,
            ready: false,
            restartCount: 0,
          },
        ],
        ephemeralContainerStatuses: [
          {
            name: 'debugger',
            image: 'busybox',
            imageID: '',
            containerID: `containerd://${ID(3)}`,
            ready: false,
            restartCount: 0,
          },
        ],
      }),
    )
    assert.equal(index.byUid('u1')?.name, 'a')
    assert.deepEqual(index.byContainerId(ID(1))?.container, {
      name: 'c1',
      image: 'img1:1',
      runtime: 'containerd',
      kind: 'container',
    })
    assert.equal(index.byContainerId(ID(2))?.container.kind, 'init')
    assert.equal(index.byContainerId(ID(3))?.container.name, 'debugger')
    assert.equal(index.byContainerId(ID(3))?.container.kind, 'ephemeral')
    assert.equal(index.byContainerId(ID(9)), undefined)
  })

  it("keeps a restarted container's old id resolvable", () => {
    const index = new PodIndex(options)
    index.upsert(fullPod('u1', 'a', [1]))
    const restarted = fullPod('u1', 'a', [])
    restarted.status!.containerStatuses = [
      {
        name: 'c1',
        image: 'img1:1',
        imageID: '',
        containerID: `containerd://${ID(5)}`,
        ready: true,
        restartCount: 1,
        lastState: { terminated: { exitCode: 1, containerID: `containerd://${ID(1)}` } },
      },
    ]
    index.upsert(restarted)
    assert.equal(index.byContainerId(ID(1))?.container.name, 'c1')
    assert.equal(index.byContainerId(ID(5))?.container.name, 'c1')
  })

  it('keeps a deleted pod for the grace period, then forgets it', () => {
    let now = 0
    const index = new PodIndex({ ...options, now: () => now })
    index.upsert(fullPod('u1', 'a', [1]))
    now = 100
    index.markDeleted(fullPod('u1', 'a', [1]))
    now = 1000
    index.sweep()
    assert.equal(index.byContainerId(ID(1))?.pod.name, 'a')
    now = 1100
    index.sweep()
    assert.equal(index.byUid('u1'), undefined)
    assert.equal(index.byContainerId(ID(1)), undefined)
  })

  it('is bounded: deleted pods go first, then the least recently changed', () => {
    let now = 0
    const index = new PodIndex({ ...options, now: () => now })
    index.upsert(fullPod('u1', 'a', [1]))
    index.upsert(fullPod('u2', 'b', [2]))
    index.upsert(fullPod('u3', 'c', [3]))
    index.markDeleted(fullPod('u2', 'b', [2]))
    now = 10
    index.upsert(fullPod('u4', 'd', [4]))
    assert.equal(index.size, 3)
    assert.equal(index.byUid('u2'), undefined, 'the deleted pod went first')
    index.upsert(fullPod('u5', 'e', [5]))
    assert.equal(index.byUid('u1'), undefined, 'then the least recently changed')
    assert.equal(index.byContainerId(ID(1)), undefined)
    assert.ok(index.byUid('u5'))
  })

  it('labels: all up to the bound by default, or an allowlist', () => {
    const all = new PodIndex({ ...options, maxLabels: 2 })
    all.upsert(fullPod('u1', 'a', [1]))
    assert.deepEqual(all.byUid('u1')?.labels, { app: 'a', 'pod-template-hash': 'abc' })
    const some = new PodIndex({ ...options, labelAllowlist: ['tier'] })
    some.upsert(fullPod('u1', 'a', [1]))
    assert.deepEqual(some.byUid('u1')?.labels, { tier: 'web' })
  })
})
