// bench/enrichment: the Enricher's cost per event with 1,000 pods cached, fed at a paced
// 100,000 events/s (EBBFLOW_BENCH_ENRICH_RATE) for EBBFLOW_BENCH_ENRICH_SECONDS (default 5),
// and heap per 1,000 pods in the pod index. The cgroups are real directories laid out like
// kubelet's cgroupfs driver under the cgroup v2 mount (root needed), so resolution walks a
// real tree. Run with --expose-gc for the memory figure (run-all passes it).
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CaptureSink } from '@ebbflow/collector'
import { CgroupPathCache, Enricher, PodIndex } from '@ebbflow/collector/enrich/index'
import {
  type CounterEvent,
  cgroupId,
  type ExitEvent,
  findCgroup2Mount,
  type RecordEvent,
} from '@ebbflow/common'
import { makePod } from '../../tests/support/fake-kube-api.ts'

const PODS = 1000
const RATE = Number(process.env.EBBFLOW_BENCH_ENRICH_RATE ?? 100_000)
const SECONDS = Number(process.env.EBBFLOW_BENCH_ENRICH_SECONDS ?? 5)
const BATCH = 1000
const gc = (globalThis as { gc?: () => void }).gc

const root = findCgroup2Mount()
const base = join(root, `ebbflow-bench-${process.pid}`)
const podDirs: string[] = []
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0')
const uidOf = (i: number) => `${hex(i, 8)}-0000-4000-8000-${hex(i, 12)}`
const containerOf = (i: number) => hex(i, 64)

function heapMiB(): number {
  gc?.()
  return process.memoryUsage().heapUsed / 2 ** 20
}

class Discard implements CaptureSink {
  events = 0
  records(events: RecordEvent[]): void {
    this.events += events.length
  }
  counters(events: CounterEvent[]): void {
    this.events += events.length
  }
}

try {
  // kubelet cgroupfs layout: kubepods/burstable/pod<uid>/<container id>
  const cgroupIds: number[] = []
  for (let i = 0; i < PODS; i++) {
    const pod = join(base, 'kubepods', 'burstable', `pod${uidOf(i)}`)
    const dir = join(pod, containerOf(i))
    mkdirSync(dir, { recursive: true })
    podDirs.push(dir, pod)
    cgroupIds.push(cgroupId(dir))
  }

  const before = heapMiB()
  const pods = new PodIndex({
    labelAllowlist: [],
    maxLabels: 32,
    functionLabels: [],
    deletedGraceMs: 120_000,
    maxPods: 5000,
  })
  for (let i = 0; i < PODS; i++) {
    pods.upsert(
      makePod({
        uid: uidOf(i),
        name: `checkout-7d9f${hex(i, 4)}-x${i}`,
        namespace: `team-${i % 20}`,
        nodeName: 'node-1',
        containers: [{ name: 'api', id: containerOf(i), image: `registry.example/checkout:${i}` }],
        labels: {
          app: 'checkout',
          'pod-template-hash': '7d9f',
          'serving.knative.dev/service': `fn-${i}`,
        },
        owner: { kind: 'ReplicaSet', name: 'checkout-7d9f' },
      }) as never,
    )
  }
  const perThousandPodsMiB = ((heapMiB() - before) * 1000) / PODS

  const sink = new Discard()
  const enricher = new Enricher(sink, {
    node: 'node-1',
    cgroups: new CgroupPathCache({ root, maxEntries: 65_536, rescanMinMs: 250 }),
    pods,
    lateMetadataMs: 2000,
    maxPendingEvents: 50_000,
    maxCachedCgroups: 65_536,
  })

  const makeBatch = (offset: number): ExitEvent[] =>
    Array.from({ length: BATCH }, (_, j) => ({
      kind: 'exit',
      bootNs: 1e12 + offset + j,
      cgroupId: cgroupIds[(offset + j) % PODS]!,
      pid: 1000 + j,
      tgid: 1000 + j,
      ppid: 1,
      uid: 0,
      gid: 0,
      pidnsIno: 4026531836,
      mntnsIno: 4026531840,
      comm: 'worker',
      durationNs: 1000,
      durationFromFork: false,
      exitCode: 0,
      signal: 0,
      coreDumped: false,
    }))

  // Warm: the first sight of each cgroup walks the tree once.
  const warmStart = process.hrtime.bigint()
  enricher.records(makeBatch(0), 'exec')
  const firstBatchNsPerEvent = Number(process.hrtime.bigint() - warmStart) / BATCH

  let busyNs = 0
  let fed = 0
  const intervalMs = (BATCH / RATE) * 1000
  const started = performance.now()
  while (performance.now() - started < SECONDS * 1000) {
    const batch = makeBatch(fed)
    const t0 = process.hrtime.bigint()
    enricher.records(batch, 'exec')
    busyNs += Number(process.hrtime.bigint() - t0)
    fed += BATCH
    const due = started + (fed / RATE) * 1000
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, intervalMs)))
  }
  const elapsed = (performance.now() - started) / 1000
  enricher.stop()
  const stats = enricher.stats()
  if (stats.sentUnresolved > 0)
    throw new Error(`${stats.sentUnresolved} events went out unresolved`)

  const report = {
    bench: 'enrichment',
    node: process.version,
    pods: PODS,
    targetEventsPerSecond: RATE,
    achievedEventsPerSecond: Math.round(fed / elapsed),
    events: fed,
    nsPerEvent: busyNs / fed,
    firstBatchNsPerEvent,
    heapPerThousandPodsMiB: gc ? perThousandPodsMiB : null,
    targets: { nsPerEvent: 300, heapPerThousandPodsMiB: 20 },
  }
  const text = `${JSON.stringify(report, null, 2)}\n`
  mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
  writeFileSync(join(import.meta.dirname, '../reports/enrichment.json'), text)
  process.stdout.write(text)
} finally {
  for (const dir of podDirs) rmdirSync(dir)
  for (const dir of [join(base, 'kubepods', 'burstable'), join(base, 'kubepods'), base])
    rmdirSync(dir)
}
