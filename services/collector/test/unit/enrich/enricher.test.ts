// The Enricher alone: a directory tree stands in for the cgroup mount (ids are inodes either
// way) and a PodIndex is fed directly; time is a fake clock.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { CounterEvent, ExecEvent, Family, RecordEvent } from '@ebbflow/common'
import { v1Types } from '@ebbflow/proto'
import type { V1Pod } from '@kubernetes/client-node'
import type { CaptureSink } from '../../../src/capture.ts'
import { CgroupPathCache } from '../../../src/enrich/cgroup-path.ts'
import { Enricher } from '../../../src/enrich/enricher.ts'
import { PodIndex } from '../../../src/enrich/pods.ts'
import { SessionTracker } from '../../../src/enrich/sessions.ts'

const UID = '2b1e5c3a-9d4f-4e8b-a1c2-3d4e5f607182'
const ID = 'ab'.repeat(32)

class Sink implements CaptureSink {
  calls: { family: Family | 'counters'; events: (RecordEvent | CounterEvent)[] }[] = []
  records(events: RecordEvent[], family: Family): void {
    this.calls.push({ family, events })
  }
  counters(events: CounterEvent[]): void {
    this.calls.push({ family: 'counters', events })
  }
  get events() {
    return this.calls.flatMap((c) => c.events)
  }
}

const exec = (cgroupId: number, pid: number): ExecEvent => ({
  kind: 'exec',
  bootNs: pid,
  cgroupId,
  pid,
  tgid: pid,
  ppid: 1,
  uid: 0,
  gid: 0,
  pidnsIno: 1,
  mntnsIno: 1,
  comm: 'sh',
  parentComm: 'init',
  filename: '/bin/sh',
  args: [],
  argsTotalBytes: 0,
  argsTruncated: false,
  filenameTruncated: false,
  argsReadFailed: false,
})

const pod: V1Pod = {
  metadata: {
    uid: UID,
    name: 'web-0',
    namespace: 'shop',
    labels: { app: 'web' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'x', controller: true },
    ],
  },
  spec: { nodeName: 'n1', containers: [{ name: 'web', image: 'nginx:1.27' }] },
  status: {
    containerStatuses: [
      {
        name: 'web',
        image: 'nginx:1.27',
        imageID: '',
        containerID: `containerd://${ID}`,
        ready: true,
        restartCount: 0,
      },
    ],
  },
}

describe('Enricher', () => {
  const root = mkdtempSync(join(tmpdir(), 'ebbflow-enricher-'))
  after(() => rmSync(root, { recursive: true, force: true }))
  const containerDir = join(root, `kubepods/burstable/pod${UID}/${ID}`)
  mkdirSync(containerDir, { recursive: true })
  mkdirSync(join(root, 'system.slice/nginx.service'), { recursive: true })
  const ino = (p: string) => Number(statSync(p, { bigint: true }).ino)
  const container = ino(containerDir)
  const unit = ino(join(root, 'system.slice/nginx.service'))

  function setup(options: { pods?: boolean; maxPendingEvents?: number; sessions?: boolean } = {}) {
    let now = 0
    const sink = new Sink()
    const pods = new PodIndex({
      labelAllowlist: [],
      maxLabels: 8,
      functionLabels: [],
      deletedGraceMs: 1000,
      maxPods: 10,
    })
    const enricher = new Enricher(sink, {
      node: 'n1',
      cgroups: new CgroupPathCache({ root, maxEntries: 100, rescanMinMs: 0 }),
      ...(options.pods === false ? {} : { pods }),
      ...(options.sessions
        ? { sessions: new SessionTracker({ maxContainers: 10, maxProcesses: 100 }) }
        : {}),
      lateMetadataMs: 2000,
      maxPendingEvents: options.maxPendingEvents ?? 100,
      maxCachedCgroups: 100,
      retryIntervalMs: 1_000_000, // driven by poke() and stop() here
      now: () => now,
    })
    return { sink, pods, enricher, advance: (ms: number) => (now += ms) }
  }

  it('names a known pod’s container at once, sharing one meta object per cgroup', () => {
    const { sink, pods, enricher } = setup()
    pods.upsert(pod)
    enricher.records([exec(container, 1), exec(container, 2)], 'exec')
    assert.equal(sink.calls.length, 1)
    const [a, b] = sink.events
    assert.equal(a!.meta, b!.meta)
    assert.deepEqual(a!.meta, {
      node: 'n1',
      cgroupPath: `/kubepods/burstable/pod${UID}/${ID}`,
      podUid: UID,
      qosClass: 'burstable',
      containerId: ID,
      runtime: 'containerd',
      namespace: 'shop',
      pod: 'web-0',
      workloadKind: 'StatefulSet',
      workloadName: 'web',
      labels: { app: 'web' },
      container: 'web',
      image: 'nginx:1.27',
    })
  })

  it('holds an event until its pod is known, passing the others on', async () => {
    const { sink, pods, enricher } = setup()
    enricher.records([exec(container, 1), exec(unit, 2)], 'exec')
    assert.deepEqual(
      sink.events.map((e) => (e as ExecEvent).pid),
      [2],
    )
    assert.equal(sink.events[0]!.meta?.systemdUnit, 'nginx.service')
    pods.upsert(pod)
    enricher.poke()
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(
      sink.events.map((e) => (e as ExecEvent).pid),
      [2, 1],
    )
    assert.equal(sink.events[1]!.meta?.pod, 'web-0')
    assert.deepEqual(enricher.stats(), {
      events: 2,
      held: 1,
      resolvedLate: 1,
      sentUnresolved: 0,
      pending: 0,
    })
  })

  it('sends a held event flagged after lateMetadataMs, and later ones from that cgroup at once', () => {
    const { sink, enricher, advance } = setup()
    enricher.records([exec(container, 1)], 'exec')
    advance(1999)
    enricher.resolveHeld()
    assert.equal(sink.events.length, 0)
    advance(1)
    enricher.resolveHeld()
    assert.equal(sink.events.length, 1)
    assert.equal(sink.events[0]!.meta?.unresolved, true)
    assert.equal(sink.events[0]!.meta?.containerId, ID)
    enricher.records([exec(container, 2)], 'exec')
    assert.equal(sink.events.length, 2, 'not held again')
    assert.equal(sink.events[1]!.meta?.unresolved, true)
  })

  it('bounds what it holds: the oldest goes out flagged', () => {
    const { sink, enricher } = setup({ maxPendingEvents: 2 })
    enricher.records([exec(container, 1), exec(container, 2), exec(container, 3)], 'exec')
    assert.deepEqual(
      sink.events.map((e) => (e as ExecEvent).pid),
      [1],
    )
    assert.equal(sink.events[0]!.meta?.unresolved, true)
    enricher.stop()
    assert.deepEqual(
      sink.events.map((e) => (e as ExecEvent).pid),
      [1, 2, 3],
      'stop sends the rest',
    )
  })

  it('host mode: containers and units named from the cgroup alone, nothing held', () => {
    const { sink, enricher } = setup({ pods: false })
    enricher.records([exec(container, 1), exec(unit, 2)], 'exec')
    assert.equal(sink.events.length, 2)
    assert.equal(sink.events[0]!.meta?.containerId, ID)
    assert.equal(sink.events[0]!.meta?.unresolved, undefined)
    assert.equal(sink.events[1]!.meta?.systemdUnit, 'nginx.service')
  })

  it('an unknown cgroup is held, then sent flagged; drops carry the node only', () => {
    const { sink, enricher } = setup({ pods: false })
    enricher.records([exec(987654321, 1)], 'exec')
    enricher.counters([{ kind: 'drops', bootNs: 1, family: 'exec', reason: 'map_full', count: 2 }])
    assert.deepEqual(
      sink.events.map((e) => e.kind),
      ['drops'],
    )
    assert.deepEqual(sink.events[0]!.meta, { node: 'n1' })
    enricher.stop()
    assert.deepEqual(sink.events[1]!.meta, { node: 'n1', unresolved: true })
  })

  it('between them, a pod container, a session, a unit and an unknown cgroup set every Metadata field', () => {
    // Walks the proto's Metadata: a field added there that enrichment never sets fails here.
    const { sink, pods, enricher } = setup({ sessions: true })
    pods.upsert({
      ...pod,
      metadata: {
        ...pod.metadata,
        labels: {
          app: 'web',
          'serving.knative.dev/service': 'resize',
          'serving.knative.dev/revision': 'resize-00002',
        },
      },
      spec: { ...pod.spec!, serviceAccountName: 'web-sa' },
    })
    // The container's main process, then a process whose parent is outside its tree (a
    // `kubectl exec` shell), a unit's process, and a cgroup nobody knows.
    enricher.records(
      [
        exec(container, 1),
        { ...exec(container, 50), ppid: 4242 },
        exec(unit, 2),
        exec(987654321, 3),
      ],
      'exec',
    )
    enricher.stop()
    const seen = new Set<string>()
    for (const e of sink.events)
      for (const [k, v] of Object.entries(e.meta ?? {})) if (v !== undefined) seen.add(k)
    const fields = v1Types.Metadata.fieldsArray.map((f) => f.name)
    assert.deepEqual(
      fields.filter((f) => !seen.has(f)),
      [],
      'Metadata fields no event carried',
    )
    const session = sink.events.find((e) => (e as ExecEvent).pid === 50)!.meta?.session
    assert.match(session ?? '', /^[0-9a-f-]{36}$/)
    assert.equal(sink.events.find((e) => (e as ExecEvent).pid === 1)!.meta?.session, undefined)
  })
})
