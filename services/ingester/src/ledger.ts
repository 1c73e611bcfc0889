// The batch ledger (migration 0006): one row per stored EventBatch with the header its
// collector wrote, so the store can list the sequence numbers that never arrived and compare
// them with the batches the publisher reported dropping. Kept apart from the insert path: the
// one call site hands it the headers of the batches a block stored, after their rows.
import { type Store, wallTime } from '@ebbflow/common/store/index'
import type { DecodedBatch } from '@ebbflow/common/wire'

export const LEDGER_TABLE = 'ebbflow.batch_ledger'

export interface BatchHeader {
  topic: string
  node: string
  bootId: string
  collectorInstanceId: string
  sequence: number
  batchId: string
  /** Wall-clock ns of the batch's first and last event (0 when it had none). */
  firstTimeNs: bigint
  lastTimeNs: bigint
  /** Events in the batch, its drop records not included. */
  events: number
  /** The publisher's queue_full drops this batch reports: whole batches, and their events. */
  droppedBatches: number
  droppedEvents: number
}

export function headerOf(topic: string, b: DecodedBatch): BatchHeader {
  let droppedBatches = 0
  let droppedEvents = 0
  for (const d of b.drops) {
    if (d.reason !== 'queue_full') continue
    droppedBatches += d.batches ?? 0
    droppedEvents += d.count
  }
  return {
    topic,
    node: b.node,
    bootId: b.bootId,
    collectorInstanceId: b.collectorInstanceId,
    sequence: b.sequence,
    batchId: b.batchId,
    firstTimeNs: b.firstTimeNs,
    lastTimeNs: b.lastTimeNs,
    events:
      b.exec.length +
      b.exit.length +
      b.fork.length +
      b.tcp.length +
      b.traffic.length +
      b.syscall.length +
      b.syscallCount.length,
    droppedBatches,
    droppedEvents,
  }
}

/**
 * Records the headers of batches whose rows are stored. `token` (the block's) makes a retry of
 * the same block add nothing; a batch redelivered in another block is one more row with the
 * same key, which the table merges away and every query counts once.
 */
export async function recordBatches(
  store: Store,
  headers: readonly BatchHeader[],
  token?: string,
): Promise<void> {
  if (headers.length === 0) return
  const storedAt = (Date.now() / 1000).toFixed(3)
  const rows = headers.map((h) => ({
    stored_at: storedAt,
    node: h.node,
    boot_id: h.bootId,
    collector_instance_id: h.collectorInstanceId,
    topic: h.topic,
    sequence: h.sequence,
    batch_id: h.batchId,
    // A batch of drop records alone has no event time: 0 (ClickHouse reads "0.000000000"
    // as a malformed date, not as the epoch).
    first_time: h.firstTimeNs > 0n ? wallTime(0, h.firstTimeNs) : 0,
    last_time: h.lastTimeNs > 0n ? wallTime(0, h.lastTimeNs) : 0,
    events: h.events,
    dropped_batches: h.droppedBatches,
    dropped_events: h.droppedEvents,
  }))
  await store.insert(
    LEDGER_TABLE,
    rows,
    token === undefined ? {} : { dedupToken: `${token}:ledger` },
  )
}
