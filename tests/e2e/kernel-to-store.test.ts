// End to end, for real: kernel events captured by the BPF programs, published to a Kafka
// broker, read by the ingester's consumer group and stored in chDB. Every marked exec and exit
// comes out as a row equal to what was captured.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CaptureSink, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import {
  type CounterEvent,
  createLogger,
  type ExecEvent,
  type ExitEvent,
  type Family,
  type RecordEvent,
} from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, KafkaDeadLetters, KafkaIngester } from '@ebbflow/ingester'
import { ChdbStore, migrate } from '@ebbflow/store'
import { isRoot, RecordingSink } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'
import { startBroker, type TestBroker, testPublisher } from '../support/kafka-broker.ts'
import { wallTime } from '../support/rows.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = !isRoot()
  ? 'needs root for the BPF programs'
  : !hasJava
    ? 'needs Java 17+ for the local Kafka broker'
    : false

/** Hands every event to both: what the test recorded is what was published. */
class Tee implements CaptureSink {
  private readonly sinks: CaptureSink[]
  constructor(...sinks: CaptureSink[]) {
    this.sinks = sinks
  }
  records(events: RecordEvent[], family: Family): void {
    for (const s of this.sinks) s.records(events, family)
  }
  counters(events: CounterEvent[]): void {
    for (const s of this.sinks) s.counters(events)
  }
}

describe('kernel → Kafka → ingester → chDB', { skip, timeout: 180_000 }, () => {
  let broker: TestBroker
  let tmp: string

  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-k2s-'))
  })

  after(async () => {
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('marked execs and their exits arrive as rows equal to the captured events', async () => {
    const brokers = [broker.bootstrap]
    const marker = `k2s-${randomUUID().slice(0, 8)}`
    const { publisher, options } = testPublisher(brokers, { node: 'e2e-node' })
    const recording = new RecordingSink()
    const capture = KernelCapture.start(
      loadCollectorConfig({ families: 'exec', flushMs: '10' }, {}),
      new Tee(recording, publisher),
      createLogger('test', 'warn'),
    )
    const cg = createCgroup('k2s')
    const store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    const logger = createLogger('test', 'warn')
    const metrics = new IngestMetrics()
    const deadLetters = new KafkaDeadLetters(brokers)
    const consumer = new KafkaIngester(
      { brokers, groupId: `k2s-${marker}`, topics: Object.values(TOPICS), maxWaitMs: 100 },
      new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' }),
      metrics,
      logger,
    )
    try {
      await consumer.start()
      const N = 20
      for (let i = 0; i < N; i++) {
        const r = await cg.run(['/bin/sh', '-c', `exit ${i % 4}`, marker, String(i)])
        assert.equal(r.code, i % 4)
      }
      // The workload's own exec (`sh -c 'exit i' marker i`), after the wrapper's exec that moved
      // it into the cgroup (same process, so both are compared).
      const workload = (e: { kind: string }) => {
        const args = e.kind === 'exec' ? (e as ExecEvent).args : []
        return args[1] === '-c' && args[2]?.startsWith('exit ') === true && args[3] === marker
      }
      await recording.waitFor((es) => es.filter(workload).length >= N, 10_000, 'marked execs')
      const tgids = new Set((recording.events.filter(workload) as ExecEvent[]).map((e) => e.tgid))
      const execs = recording.events.filter(
        (e) => e.kind === 'exec' && tgids.has(e.tgid),
      ) as ExecEvent[]
      await recording.waitFor(
        (es) => es.filter((e) => e.kind === 'exit' && tgids.has((e as ExitEvent).tgid)).length >= N,
        10_000,
        'their exits',
      )
      const exits = recording.events.filter(
        (e) => e.kind === 'exit' && tgids.has((e as ExitEvent).tgid),
      ) as ExitEvent[]
      assert.equal(await publisher.drain(30_000), true)

      const want = [
        ...execs.map((e) => ({
          time: wallTime(e.bootNs, options.clock.offsetNs),
          kind: 'exec',
          tgid: e.tgid,
          cgroup_id: String(e.cgroupId),
          filename: e.filename,
          args: e.args,
          exit_code: 0,
        })),
        ...exits.map((e) => ({
          time: wallTime(e.bootNs, options.clock.offsetNs),
          kind: 'exit',
          tgid: e.tgid,
          cgroup_id: String(e.cgroupId),
          filename: '',
          args: [],
          exit_code: e.exitCode,
        })),
      ].sort((a, b) => a.time.localeCompare(b.time) || a.kind.localeCompare(b.kind))
      const tgidList = [...tgids]
      const read = () =>
        store.query<Record<string, unknown>>(
          `SELECT toUnixTimestamp64Nano(time) AS ns, kind, tgid, cgroup_id, filename, args, exit_code
           FROM ebbflow.process_events
           WHERE node = 'e2e-node' AND tgid IN {tgids:Array(UInt32)} AND kind IN ('exec', 'exit')
           ORDER BY time, kind`,
          { tgids: tgidList },
        )
      const deadline = Date.now() + 30_000
      let rows = await read()
      while (rows.length < want.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250))
        rows = await read()
      }
      const got = rows.map((r) => {
        const ns = BigInt(String(r.ns))
        return {
          time: `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`,
          kind: r.kind,
          tgid: r.tgid,
          cgroup_id: r.cgroup_id,
          filename: r.filename,
          args: r.args,
          exit_code: r.exit_code,
        }
      })
      assert.equal(exits.length, N)
      assert.deepEqual(got, want)
      assert.ok(
        execs.filter(workload).every((e) => e.cgroupId === cg.id),
        'the workload (not its wrapper) is charged to the test cgroup',
      )
    } finally {
      await consumer.stop()
      await deadLetters.close()
      await capture.stop()
      await publisher.close()
      await store.close()
      await cg.remove()
    }
  })
})
