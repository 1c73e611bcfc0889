// The publisher reuses the buffers of acknowledged batches only where the transport copied
// their bytes (Kafka); the embedded transport hands the very buffers to its reader, so there
// they must stay untouched. Both cases check every event the test published, byte for byte as
// decoded from what the transport received.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CapturedEvent } from '@ebbflow/common'
import { decodeEventBatch, WallClock } from '@ebbflow/common/wire'
import { syntheticExec } from '../../../../tests/support/synthetic-exec.ts'
import {
  InProcessTransport,
  type OutRecord,
  Publisher,
  type Transport,
} from '../../src/publish/index.ts'

const EVENTS = 4000

// Different bytes per event, so a batch written over another's shows.
const exec = (i: number): CapturedEvent =>
  syntheticExec(i, `arg-${i}-`.padEnd(150, String.fromCharCode(97 + (i % 26))))

const options = {
  node: 'n',
  clock: new WallClock(0n),
  bootNow: () => 2_000_000,
  queueBudgetBytes: 64 << 20,
  batchMaxEvents: 100_000,
  // ~64 KiB batches: large enough to be kept for reuse.
  batchMaxBytes: 64 * 1024,
  lingerMs: 60_000,
}

/** Takes a copy of each record when sent, as kafkajs encodes it into its request. */
class CopyingTransport implements Transport {
  readonly copiesRecords = true
  readonly copies: Buffer[] = []
  readonly buffers = new Map<ArrayBufferLike, number>()
  async send(records: OutRecord[]): Promise<void> {
    for (const r of records) {
      this.copies.push(Buffer.from(r.value))
      this.buffers.set(r.value.buffer, (this.buffers.get(r.value.buffer) ?? 0) + 1)
    }
    await new Promise((r) => setImmediate(r))
  }
  async close(): Promise<void> {}
}

/** The argv of every event in the received batches, in sequence order. */
function received(values: Buffer[]): { sequences: number[]; args: string[] } {
  const batches = values.map((v) => decodeEventBatch(v)).sort((a, b) => a.sequence - b.sequence)
  return {
    sequences: batches.map((b) => b.sequence),
    args: batches.flatMap((b) => b.exec.map((e) => e.args[1] ?? '')),
  }
}

const expected = Array.from({ length: EVENTS }, (_, i) => exec(i))
const expectedArgs = expected.map((e) => (e.kind === 'exec' ? (e.args[1] ?? '') : ''))

describe('publisher: batch buffers', () => {
  it('reuses acknowledged buffers when the transport copied them, and every byte arrives', async () => {
    const transport = new CopyingTransport()
    const publisher = new Publisher(transport, options)
    // In slices, with the event loop turning between them: batches are acknowledged (and
    // their buffers given back) while the next ones are written.
    for (let i = 0; i < EVENTS; i += 200) {
      publisher.publish(expected.slice(i, i + 200))
      await new Promise((r) => setImmediate(r))
    }
    const stats = await publisher.close(10_000)
    assert.equal(stats.publishedEvents, EVENTS)
    const got = received(transport.copies)
    assert.deepEqual(got.sequences, [...got.sequences.keys()])
    assert.deepEqual(got.args, expectedArgs)
    // Not a vacuous pass: some buffer carried more than one batch.
    assert.ok(
      [...transport.buffers.values()].some((n) => n > 1),
      `${transport.copies.length} batches, no buffer reused`,
    )
  })

  it('leaves the buffers the embedded transport hands to its reader alone', async () => {
    const transport = new InProcessTransport(1 << 30)
    const publisher = new Publisher(transport, options)
    for (let i = 0; i < EVENTS; i += 200) {
      publisher.publish(expected.slice(i, i + 200))
      await new Promise((r) => setImmediate(r))
    }
    await publisher.close(10_000)
    // Read only now: every value was held by the transport while later batches were written.
    const values: Buffer[] = []
    for await (const r of transport.consume()) values.push(r.value)
    assert.ok(values.length > 4, `${values.length} batches`)
    const got = received(values)
    assert.deepEqual(got.sequences, [...got.sequences.keys()])
    assert.deepEqual(got.args, expectedArgs)
  })
})
