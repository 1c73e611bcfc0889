// The ingester as a function: `handleKafkaBatch(records)` stores one delivery of Kafka records
// and returns; adapters turn what a Knative KafkaSource (one CloudEvent per record, over HTTP)
// and an AWS Lambda MSK trigger (records grouped by topic-partition, base64) deliver into
// those records. A platform retries a delivery that failed; each partition's records are
// stored as one block named by its offset range, so a retried delivery adds no rows.
import type { IncomingHttpHeaders } from 'node:http'
import { EbbflowError } from '@ebbflow/common'
import type { BlockResult, Ingestor } from './ingest.ts'
import type { InRecord } from './records.ts'

export interface BatchResult {
  records: number
  stored: number
  deadLetters: number
  rows: number
}

/**
 * Stores the records (any topics and partitions, any order). Rejects when the store fails in a
 * way a retry may cure — the platform's retry is the retry.
 */
export async function handleKafkaBatch(
  ingestor: Ingestor,
  records: readonly InRecord[],
): Promise<BatchResult> {
  const byPartition = new Map<string, InRecord[]>()
  for (const r of records) {
    const key = `${r.topic}:${r.partition}`
    const list = byPartition.get(key)
    if (list) list.push(r)
    else byPartition.set(key, [r])
  }
  const out: BatchResult = { records: 0, stored: 0, deadLetters: 0, rows: 0 }
  for (const [key, list] of byPartition) {
    list.sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1))
    const token = `fn:${key}:${list[0]!.offset}-${list[list.length - 1]!.offset}`
    const r: BlockResult = await ingestor.ingestBlock(list, token)
    out.records += r.records
    out.stored += r.stored
    out.deadLetters += r.deadLetters
    for (const n of Object.values(r.rows)) out.rows += n
  }
  return out
}

function invalid(message: string): EbbflowError {
  return new EbbflowError('EVENT_SHAPE', message)
}

/** The event an AWS Lambda MSK (or self-managed Kafka) trigger passes to the function. */
export interface MskEvent {
  eventSource: string
  records: Record<
    string,
    {
      topic: string
      partition: number
      offset: number | string
      key?: string | null
      value?: string | null
    }[]
  >
}

export function recordsFromMsk(event: MskEvent): InRecord[] {
  if (event?.eventSource !== 'aws:kafka' && event?.eventSource !== 'SelfManagedKafka')
    throw invalid(`not an MSK trigger event (eventSource ${JSON.stringify(event?.eventSource)})`)
  if (typeof event.records !== 'object' || event.records === null)
    throw invalid('MSK event without records')
  const out: InRecord[] = []
  for (const list of Object.values(event.records))
    for (const r of list) {
      if (typeof r.topic !== 'string' || !Number.isInteger(r.partition))
        throw invalid('MSK record without topic or partition')
      out.push({
        topic: r.topic,
        partition: r.partition,
        offset: String(r.offset),
        key: r.key ? Buffer.from(r.key, 'base64') : null,
        value: r.value ? Buffer.from(r.value, 'base64') : null,
      })
    }
  return out
}

/**
 * One CloudEvent from a Knative KafkaSource in binary mode: the body is the record's value,
 * `ce-source` ends in `#topic`, `ce-subject` is `partition:P#OFFSET`, `ce-key` the key. The
 * structured mode (application/cloudevents+json with data_base64) is read too.
 */
export function recordFromKnative(headers: IncomingHttpHeaders, body: Buffer): InRecord {
  const header = (name: string) => {
    const v = headers[name]
    return Array.isArray(v) ? v[0] : v
  }
  let source = header('ce-source')
  let subject = header('ce-subject')
  let key = header('ce-key')
  let value = body
  if (header('content-type')?.startsWith('application/cloudevents+json')) {
    let ce: Record<string, unknown>
    try {
      ce = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    } catch (err) {
      throw invalid(`structured CloudEvent is not JSON: ${(err as Error).message}`)
    }
    source = typeof ce.source === 'string' ? ce.source : undefined
    subject = typeof ce.subject === 'string' ? ce.subject : undefined
    key = typeof ce.key === 'string' ? ce.key : undefined
    if (typeof ce.data_base64 !== 'string')
      throw invalid('structured CloudEvent without data_base64 (records are binary)')
    value = Buffer.from(ce.data_base64, 'base64')
  }
  const topic = source?.split('#')[1]
  const m = subject ? /^partition:(\d+)#(\d+)$/.exec(subject) : null
  if (!topic || !m)
    throw invalid(
      `not a KafkaSource event: need ce-source …#topic and ce-subject partition:P#OFFSET (got ${JSON.stringify(source)}, ${JSON.stringify(subject)})`,
    )
  return {
    topic,
    partition: Number(m[1]),
    offset: m[2]!,
    key: key === undefined ? null : Buffer.from(key),
    value,
  }
}
