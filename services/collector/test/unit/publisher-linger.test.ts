// One linger for every family: what the families hold when it ends goes out in one produce
// request, each family's batch on its own topic, and no event waits longer than the linger.
// A full batch still goes at once. The events are checked as decoded from what the transport
// received, against the ones the test handed over.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CapturedEvent } from '@ebbflow/common'
import { decodeEventBatch, TOPICS, WallClock } from '@ebbflow/common/wire'
import { until } from '../../../../tests/support/proc.ts'
import { syntheticExec } from '../../../../tests/support/synthetic-exec.ts'
import { type OutRecord, Publisher, type Transport } from '../../src/publish/index.ts'

const LINGER_MS = 120

/** Each send() as the transport got it: when, and its records. */
class RecordingTransport implements Transport {
  readonly copiesRecords = true
  readonly sends: { at: number; records: OutRecord[] }[] = []
  async send(records: OutRecord[]): Promise<void> {
    this.sends.push({ at: performance.now(), records: records.map((r) => ({ ...r })) })
  }
  async close(): Promise<void> {}
}

function publisher(batchMaxEvents = 1000) {
  const transport = new RecordingTransport()
  const p = new Publisher(transport, {
    node: 'n',
    clock: new WallClock(0n),
    bootNow: () => 2_000_000,
    queueBudgetBytes: 16 << 20,
    batchMaxEvents,
    batchMaxBytes: 1 << 20,
    lingerMs: LINGER_MS,
  })
  return { p, transport }
}

const syscallCount: CapturedEvent = {
  kind: 'syscall_count',
  bootNs: 1_500_000,
  intervalNs: 1_000_000_000,
  cgroupId: 7,
  syscallNr: 0,
  syscall: 'read',
  count: 42,
}
const traffic: CapturedEvent = {
  kind: 'traffic',
  bootNs: 1_600_000,
  intervalNs: 1_000_000_000,
  cgroupId: 7,
  direction: 'egress',
  protocol: 6,
  family: 4,
  remoteAddr: '10.1.2.3',
  remotePort: 9092,
  localPort: 40_000,
  packets: 3,
  bytes: 1234,
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits, checking every 5 ms, until the transport has had `n` requests. */
const requests = (transport: RecordingTransport, n: number, timeoutMs = 5_000) =>
  until(
    `${n} requests`,
    () => transport.sends.length,
    (k) => k >= n,
    timeoutMs,
    5,
  )

describe('publisher linger', () => {
  it("sends the families' batches of one linger together, within the linger", async () => {
    const { p, transport } = publisher()
    const t0 = performance.now()
    p.publish([syntheticExec(1, 'first')])
    await sleep(40)
    p.publish([syscallCount, traffic, syntheticExec(2, 'second')])
    await requests(transport, 1)
    await sleep(LINGER_MS) // a second request, if one were coming, would have gone by now
    assert.equal(transport.sends.length, 1, 'one request')
    const [send] = transport.sends
    assert.ok(send!.at - t0 >= LINGER_MS - 2, `not before the linger: ${send!.at - t0} ms`)
    assert.ok(send!.at - t0 < LINGER_MS + 100, `within the linger: ${send!.at - t0} ms`)
    const topics = send!.records.map((r) => r.topic).sort()
    assert.deepEqual(topics, [TOPICS.exec, TOPICS.net, TOPICS.syscall].sort())
    const byTopic = new Map(send!.records.map((r) => [r.topic, decodeEventBatch(r.value)]))
    assert.deepEqual(
      byTopic.get(TOPICS.exec)!.exec.map((e) => e.args[1]),
      ['first', 'second'],
    )
    const counts = byTopic.get(TOPICS.syscall)!.syscallCount
    assert.deepEqual(
      counts.map((c) => [c.cgroupId, c.syscall, c.count]),
      [[7, 'read', 42]],
    )
    const flows = byTopic.get(TOPICS.net)!.traffic
    assert.deepEqual(
      flows.map((f) => [f.remoteAddr, f.remotePort, f.localPort, f.bytes, f.packets]),
      [['10.1.2.3', 9092, 40_000, 1234, 3]],
    )
    assert.equal(p.stats().publishedEvents, 4)
    await p.close()
  })

  it('starts again with the next event, and a full batch does not wait for it', async () => {
    const { p, transport } = publisher(2)
    p.publish([syntheticExec(1, 'a')])
    await requests(transport, 1)
    const t1 = performance.now()
    p.publish([syntheticExec(2, 'b'), syntheticExec(3, 'c')]) // full at 2: sent at once
    await requests(transport, 2, 1_000)
    assert.ok(performance.now() - t1 < LINGER_MS / 2, 'a full batch goes without lingering')
    p.publish([traffic])
    await requests(transport, 3)
    assert.ok(performance.now() - t1 >= LINGER_MS - 2, 'the next partial batch lingered')
    const sent = transport.sends.map((s) =>
      s.records.map((r) => {
        const b = decodeEventBatch(r.value)
        return [r.topic, ...b.exec.map((e) => e.args[1]), ...b.traffic.map((f) => f.bytes)]
      }),
    )
    assert.deepEqual(sent, [[[TOPICS.exec, 'a']], [[TOPICS.exec, 'b', 'c']], [[TOPICS.net, 1234]]])
    await p.close()
  })
})
