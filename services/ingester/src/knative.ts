// The Knative sink: one CloudEvent per POST from a KafkaSource (binary or structured mode).
// The status is what Knative's delivery acts on:
//   200  stored (a redelivery is stored again under the same token: no new rows)
//   422  the record can never be stored (undecodable, invalid): it is in the dead letters, and
//        Knative does not retry a 4xx other than 404/408/409/429
//   400  not a KafkaSource event at all: kept in the dead letters too, with its raw body
//   503  the store (or the dead-letter topic) failed: Knative retries with its backoff
import { createServer, type Server } from 'node:http'
import type { Logger } from '@ebbflow/common'
import type { DeadLetterSink } from './dead-letters.ts'
import { handleKafkaBatch, recordFromKnative } from './handler.ts'
import type { Ingestor } from './ingest.ts'
import type { InRecord } from './records.ts'

/** Largest request body read; a KafkaSource event is one Kafka record (1 MiB by default). */
const MAX_BODY_BYTES = 64 * 1024 * 1024

export function knativeSink(
  ingestor: Ingestor,
  deadLetters: DeadLetterSink,
  logger: Logger,
): Server {
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) {
        reply(413, { error: `request body over ${MAX_BODY_BYTES} bytes` })
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      let record: InRecord
      try {
        record = recordFromKnative(req.headers, body)
      } catch (err) {
        const error = (err as Error).message
        // Nothing a client sends is dropped: the request that is no Kafka record is kept whole,
        // its CloudEvent source in place of a topic.
        const source = req.headers['ce-source']
        const letter = {
          record: {
            topic: typeof source === 'string' ? source : '',
            partition: -1,
            offset: '',
            key: null,
            value: body,
          },
          reason: 'unknown_topic' as const,
          error,
          source: 'knative',
        }
        deadLetters.write([letter]).then(
          () => reply(400, { error, deadLettered: true }),
          (e: Error) => {
            logger.warn({ err: e }, 'dead-lettering a request that is no KafkaSource event failed')
            reply(503, { error: `dead letters unavailable: ${e.message}` })
          },
        )
        return
      }
      handleKafkaBatch(ingestor, [record]).then(
        (r) => reply(r.stored === r.records ? 200 : 422, r),
        (err: Error) => {
          logger.warn({ err }, 'storing a Knative event failed; the source will retry')
          reply(503, { error: err.message, code: (err as { code?: string }).code })
        },
      )
    })
  })
}
