// The publisher's drop accounting on the embedded mode's transport: a consumer that does not
// read makes the publisher drop batches past its budget, batches that carry earlier drops are
// dropped in turn, and once the consumer reads, the sequence numbers it never sees are exactly
// the batches the queue_full records report — counted from the bytes it received.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CapturedEvent } from '@ebbflow/common'
import { decodeEventBatch, TOPICS, WallClock } from '@ebbflow/common/wire'
import { syntheticExec } from '../../../../tests/support/synthetic-exec.ts'
import { InProcessTransport, Publisher } from '../../src/publish/index.ts'

const E = 10

function execs(from: number): CapturedEvent[] {
  return Array.from({ length: E }, (_, k) => syntheticExec(from + k, 'y'.repeat(100)))
}

describe('publisher: dropped batches are counted by sequence number', () => {
  it('gaps in the received sequence = the batches reported in queue_full drops', async () => {
    // One batch fits in the transport; the budget holds about three more.
    const transport = new InProcessTransport(1)
    const publisher = new Publisher(transport, {
      node: 'n',
      clock: new WallClock(0n),
      bootNow: () => 2_000_000,
      queueBudgetBytes: 6 * 1024,
      batchMaxEvents: E,
      batchMaxBytes: 1 << 20,
      lingerMs: 60_000,
    })
    const published = 40
    // Published in rounds with the event loop turning between them: batches that carry the
    // drops of earlier rounds are queued, and dropped too.
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < published / 4; i++) publisher.publish(execs((round * 10 + i) * E))
      await new Promise((r) => setImmediate(r))
    }
    const dropped = publisher.stats().droppedBatches
    assert.ok(dropped >= 20, `dropped ${dropped}`)

    const seen: number[] = []
    let reportedBatches = 0
    let reportedEvents = 0
    let events = 0
    const reading = (async () => {
      for await (const r of transport.consume()) {
        assert.equal(r.topic, TOPICS.exec)
        const b = decodeEventBatch(r.value)
        seen.push(b.sequence)
        events += b.exec.length
        for (const d of b.drops) {
          assert.equal(d.reason, 'queue_full')
          reportedBatches += d.batches ?? 0
          reportedEvents += d.count
        }
      }
    })()
    await publisher.close(10_000)
    await reading

    const highest = Math.max(...seen)
    const missing = highest + 1 - new Set(seen).size
    assert.equal(new Set(seen).size, seen.length, 'each sequence once')
    assert.equal(missing, dropped, 'the gaps are the batches the publisher dropped')
    assert.equal(reportedBatches, missing, 'every gap reported')
    assert.equal(events + reportedEvents, published * E, 'every event received or reported')
  })
})
