// One record as every source delivers it (a Kafka message, an in-process queue entry, a
// serverless event), and its decoding into an EventBatch with the checks a stored batch must
// pass. The hot path never throws: a record is either a batch or a reason it is not.
import { type DecodedBatch, decodeEventBatch, TOPICS } from '@ebbflow/common/wire'
import { validateBatch } from './validate.ts'

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
  | { ok: true; batch: DecodedBatch; events: number }
  | { ok: false; reason: DeadLetterReason; error: string }

const EVENT_TOPICS = new Set(Object.values(TOPICS))

export function eventCount(b: DecodedBatch): number {
  return (
    b.exec.length +
    b.exit.length +
    b.fork.length +
    b.tcp.length +
    b.traffic.length +
    b.syscall.length +
    b.syscallCount.length +
    b.drops.length +
    b.file.length
  )
}

/** Decodes and checks one record. */
export function decodeRecord(r: InRecord): Decoded {
  if (!EVENT_TOPICS.has(r.topic))
    return { ok: false, reason: 'unknown_topic', error: `topic ${r.topic} carries no events` }
  if (!r.value || r.value.length === 0)
    return { ok: false, reason: 'empty_record', error: 'record has no value' }
  let batch: DecodedBatch
  try {
    batch = decodeEventBatch(r.value)
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
  if (batch.node === '') problems.push('no node')
  if (batch.batchId === '') problems.push('no batch id')
  if (batch.untimed > 0) problems.push(`${batch.untimed} events without a timestamp`)
  if (problems.length > 0)
    return {
      ok: false,
      reason: 'invalid_batch',
      error: `invalid EventBatch: ${problems.join(', ')}`,
    }
  const invalid = validateBatch(batch)
  if (invalid.length > 0)
    return { ok: false, reason: 'invalid_event', error: `out of range: ${invalid.join('; ')}` }
  return { ok: true, batch, events: eventCount(batch) }
}
