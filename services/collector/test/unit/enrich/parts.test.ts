// The enrichment's parts alone: composition (identity + pod → meta) and the late queue.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ExitEvent } from '@ebbflow/common'
import type { V1Pod } from '@kubernetes/client-node'
import type { CgroupIdentity } from '../../../src/enrich/cgroup-path.ts'
import { composeMeta } from '../../../src/enrich/compose-meta.ts'
import { type HeldEvent, LateQueue } from '../../../src/enrich/late-queue.ts'
import { PodIndex } from '../../../src/enrich/pods.ts'

const UID = '2b1e5c3a-9d4f-4e8b-a1c2-3d4e5f607182'
const ID = 'cd'.repeat(32)
const SANDBOX = 'ef'.repeat(32)

function podIndex(): PodIndex {
  const pods = new PodIndex({
    labelAllowlist: [],
    maxLabels: 8,
    functionLabels: [],
    deletedGraceMs: 1000,
    maxPods: 10,
  })
  const pod: V1Pod = {
    metadata: { uid: UID, name: 'api-0', namespace: 'shop', labels: { app: 'api' } },
    spec: { nodeName: 'n1', containers: [{ name: 'api', image: 'api:2' }] },
    status: {
      containerStatuses: [
        {
          name: 'api',
          image: 'api:2',
          imageID: '',
          containerID: `containerd://${ID}`,
          ready: true,
          restartCount: 0,
        },
      ],
    },
  }
  pods.upsert(pod)
  return pods
}

describe('composeMeta', () => {
  const path = (c: string) => `kubepods/burstable/pod${UID}/${c}`
  const cases: {
    name: string
    ident: CgroupIdentity | undefined
    pods: boolean
    complete: boolean
    expect: Record<string, unknown>
  }[] = [
    { name: 'unknown cgroup', ident: undefined, pods: true, complete: false, expect: {} },
    {
      name: 'systemd unit on the host',
      ident: { path: 'system.slice/cron.service', systemdUnit: 'cron.service' },
      pods: false,
      complete: true,
      expect: { cgroupPath: 'system.slice/cron.service', systemdUnit: 'cron.service' },
    },
    {
      name: 'container in host mode: what the path says is all there is',
      ident: { path: path(ID), podUid: UID, containerId: ID },
      pods: false,
      complete: true,
      expect: { cgroupPath: path(ID), podUid: UID, containerId: ID },
    },
    {
      name: 'container of a known pod',
      ident: { path: path(ID), podUid: UID, containerId: ID },
      pods: true,
      complete: true,
      expect: { pod: 'api-0', namespace: 'shop', container: 'api', image: 'api:2' },
    },
    {
      name: 'sandbox container: the pod is known, the container never will be',
      ident: { path: path(SANDBOX), podUid: UID, containerId: SANDBOX },
      pods: true,
      complete: false,
      expect: { pod: 'api-0', container: undefined },
    },
  ]
  for (const c of cases)
    it(c.name, () => {
      const got = composeMeta('n1', c.ident, c.pods ? podIndex() : undefined)
      assert.equal(got.complete, c.complete)
      assert.equal(got.meta.node, 'n1')
      for (const [k, v] of Object.entries(c.expect))
        assert.deepEqual(got.meta[k as keyof typeof got.meta], v, k)
    })
})

describe('LateQueue', () => {
  const held = (pid: number): HeldEvent => ({
    event: { kind: 'exit', bootNs: pid, cgroupId: 7, pid } as unknown as ExitEvent,
    family: 'exec',
    cgroupId: 7,
    deadline: pid,
    session: undefined,
  })
  const pids = (hs: HeldEvent[]) => hs.map((h) => (h.event as ExitEvent).pid)

  it('is bounded: the oldest comes back when full; release keeps arrival order', () => {
    const q = new LateQueue({ maxPending: 2, retryIntervalMs: 60_000, retry: () => {} })
    assert.equal(q.hold(held(1)), undefined)
    assert.equal(q.hold(held(2)), undefined)
    assert.deepEqual(pids([q.hold(held(3))!]), [1])
    assert.equal(q.length, 2)
    assert.deepEqual(pids(q.release((h) => h.deadline >= 3)), [3])
    assert.deepEqual(pids(q.release(() => true)), [2])
    assert.equal(q.length, 0)
  })

  it('asks for retries while events wait, and stops asking when none do', async () => {
    let retries = 0
    const q = new LateQueue({ maxPending: 10, retryIntervalMs: 5, retry: () => retries++ })
    q.hold(held(1))
    const deadline = Date.now() + 5000
    while (retries < 2) {
      assert.ok(Date.now() < deadline, 'no retry within 5 s')
      await new Promise((r) => setTimeout(r, 5))
    }
    q.release(() => true)
    const after = retries
    await new Promise((r) => setTimeout(r, 30))
    assert.equal(retries, after)
  })
})
