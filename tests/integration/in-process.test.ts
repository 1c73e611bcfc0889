// The embedded mode's transport: the same publisher and batches, read in-process; a consumer
// that does not read backs up into the publisher's budget, which counts what it drops.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  decodeEventBatch,
  InProcessTransport,
  type OutRecord,
  Publisher,
  TOPICS,
  WallClock,
} from '@ebbflow/collector'
import { syntheticEvents } from './events-fixture.ts'

const options = (over: Partial<ConstructorParameters<typeof Publisher>[1]> = {}) => ({
  node: 'node-a',
  clock: new WallClock(1_764_000_000_000_000_000n),
  bootNow: () => 2_000_000_000_000,
  queueBudgetBytes: 1 << 26,
  batchMaxEvents: 250,
  batchMaxBytes: 1 << 20,
  lingerMs: 5,
  ...over,
})

describe('in-process transport', () => {
  it('delivers every batch to the consumer, per topic in sequence order', async () => {
    const transport = new InProcessTransport()
    const o = options()
    const p = new Publisher(transport, o)
    const events = syntheticEvents(2000)
    const read: OutRecord[] = []
    const reading = (async () => {
      for await (const r of transport.consume()) read.push(r)
    })()
    p.publish(events)
    const stats = await p.close()
    await reading
    assert.equal(stats.publishedEvents, 2000)
    let n = 0
    for (const topic of Object.values(TOPICS)) {
      const seqs = read
        .filter((r) => r.topic === topic)
        .map((r) => decodeEventBatch(r.value))
        .map((b) => {
          n += b.exec.length + b.exit.length + b.fork.length + b.tcp.length + b.traffic.length
          n += b.syscall.length + b.syscallCount.length + b.drops.length
          return b.sequence
        })
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i),
      )
    }
    assert.equal(n, 2000)
  })

  it('a consumer that does not read: past the budget, drops are counted by family', async () => {
    const transport = new InProcessTransport(16 * 1024)
    const p = new Publisher(transport, options({ queueBudgetBytes: 32 * 1024, batchMaxEvents: 50 }))
    p.publish(syntheticEvents(5000))
    await p.drain(200)
    const s = p.stats()
    const dropped = Object.values(s.droppedEvents).reduce((a, b) => a + b, 0)
    assert.ok(dropped > 0)
    assert.ok(s.queuedBytes <= 32 * 1024 + 16 * 1024)
    // Every event is published, dropped past the budget, or still held: nothing else.
    assert.equal(s.publishedEvents + dropped + s.queuedEvents, 5000)
    await transport.close()
    await p.close(100)
  })
})
