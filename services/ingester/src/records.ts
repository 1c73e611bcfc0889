// One record as every source delivers it (a Kafka message, an in-process queue entry, a
// serverless event), and what the ingester reads of it: the batch header only (who sent it,
// which batch, how many events). The events are parsed and checked by ClickHouse
// (store/batch-sql.ts). The hot path never throws: a record is either a header or a reason it
// cannot be stored.
import { type BatchHeader, readBatchHeader } from '@ebbflow/common/batch-header'
import { TOPICS } from '@ebbflow/common/wire'
import { TIME_MAX_NS, TIME_MIN_NS } from '@ebbflow/store'

export interface InRecord {
  topic: string
  partition: number
  /** Kafka offsets are int64: kept as decimal strings. */
  offset: string
  key: Buffer | null
  value: Buffer | null
}

/** Why a record went to the dead letters. */
export type DeadLetterReason =
  | 'empty_record'
  | 'undecodable'
  | 'invalid_batch'
  | 'invalid_event'
  | 'unknown_topic'
  | 'store_rejected'

export type Decoded =
  | { ok: true; header: BatchHeader; events: number }
  | { ok: false; reason: DeadLetterReason; error: string }

const EVENT_TOPICS = new Set(Object.values(TOPICS))

/** A sequence counts batches from 0: no collector sends 2^53 of them. */
const SEQUENCE_MAX = BigInt(Number.MAX_SAFE_INTEGER)

/** Reads and checks one record's header. */
export function decodeRecord(r: InRecord): Decoded {
  if (!EVENT_TOPICS.has(r.topic))
    return { ok: false, reason: 'unknown_topic', error: `topic ${r.topic} carries no events` }
  if (!r.value || r.value.length === 0)
    return { ok: false, reason: 'empty_record', error: 'record has no value' }
  let header: BatchHeader
  try {
    header = readBatchHeader(r.value)
  } catch (err) {
    return {
      ok: false,
      reason: 'undecodable',
      error: `not an ebbflow.v1.EventBatch: ${(err as Error).message}`,
    }
  }
  // Protobuf reads almost any bytes as *some* message (unknown fields are skipped), so a batch
  // is checked for what every collector writes: who sent it and under which id.
  const problems: string[] = []
  if (header.node === '') problems.push('no node')
  if (header.batchId === '') problems.push('no batch id')
  if (problems.length > 0)
    return {
      ok: false,
      reason: 'invalid_batch',
      error: `invalid EventBatch: ${problems.join(', ')}`,
    }
  const invalid: string[] = []
  if (header.sequence > SEQUENCE_MAX) invalid.push(`sequence ${header.sequence} out of range`)
  // The batch ledger stores these (ledger.ts): a time ClickHouse cannot read failed that insert
  // after the block's rows, for good, and the partition retried it forever. 0: no timed events.
  for (const [name, t] of [
    ['first_time_ns', header.firstTimeNs],
    ['last_time_ns', header.lastTimeNs],
  ] as const)
    if (t !== 0n && (t < TIME_MIN_NS || t > TIME_MAX_NS)) invalid.push(`${name} ${t} out of range`)
  // Collectors never publish an empty batch; another message type read as a batch is one.
  if (header.total === 0) invalid.push('no events')
  if (invalid.length > 0)
    return { ok: false, reason: 'invalid_event', error: `out of range: ${invalid.join('; ')}` }
  return { ok: true, header, events: header.total }
}
