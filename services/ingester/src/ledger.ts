// The batch ledger (migration 0006): one row per stored EventBatch with the header its
// collector wrote, so the store can list the sequence numbers that never arrived and compare
// them with the batches the publisher reported dropping. Kept apart from the insert path: the
// one call site hands it the headers of the batches a block stored, after their rows.

import type { BatchHeader } from '@ebbflow/common/batch-header'
import { nsToEpochText } from '@ebbflow/common/event-time'
import type { Store } from '@ebbflow/store'

export const LEDGER_TABLE = 'ebbflow.batch_ledger'

/** A stored batch's header, and the topic it came from. */
export interface LedgerEntry {
  topic: string
  header: BatchHeader
}

/**
 * Records the headers of batches whose rows are stored. `token` (the block's) makes a retry of
 * the same block add nothing; a batch redelivered in another block is one more row with the
 * same key, which the table merges away and every query counts once.
 */
export async function recordBatches(
  store: Store,
  entries: readonly LedgerEntry[],
  token?: string,
): Promise<void> {
  if (entries.length === 0) return
  const storedAt = (Date.now() / 1000).toFixed(3)
  const rows = entries.map(({ topic, header: h }) => ({
    stored_at: storedAt,
    node: h.node,
    boot_id: h.bootId,
    collector_instance_id: h.collectorInstanceId,
    topic,
    sequence: h.sequence.toString(),
    batch_id: h.batchId,
    // A batch of drop records alone has no event time: 0 (ClickHouse reads "0.000000000"
    // as a malformed date, not as the epoch).
    first_time: h.firstTimeNs > 0n ? nsToEpochText(h.firstTimeNs) : 0,
    last_time: h.lastTimeNs > 0n ? nsToEpochText(h.lastTimeNs) : 0,
    // Events of the batch, its drop records not included.
    events: h.total - (h.events.drops ?? 0),
    dropped_batches: h.droppedBatches,
    dropped_events: h.droppedEvents,
  }))
  await store.insert(
    LEDGER_TABLE,
    rows,
    token === undefined ? {} : { dedupToken: `${token}:ledger` },
  )
}
