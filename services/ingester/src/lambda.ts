// The ingester as an AWS Lambda function for an Amazon MSK or self-managed Kafka trigger
// (handler `index.handler` in the bundle `npm run package:functions` writes). Configuration
// comes from the function's environment (EBBFLOW_CLICKHOUSE or EBBFLOW_DATA_DIR, EBBFLOW_KAFKA
// and EBBFLOW_DLQ_TOPIC for dead letters, EBBFLOW_FUNCTION_SCHEMA). The store is opened on the
// first invocation and kept for the next ones of the same instance.
//
// What an invocation promises: it resolves once every record of the event is stored or
// dead-lettered; it rejects when the store (or the dead-letter topic) failed, and the
// platform retries the whole event. A retried event is stored under the same deduplication
// tokens (topic, partition and offset range), so it adds no rows.
import { createLogger } from '@ebbflow/common'
import { loadFunctionConfig } from './config.ts'
import { type FunctionIngester, openFunctionIngester } from './function.ts'
import { type BatchResult, handleKafkaBatch, type MskEvent, recordsFromMsk } from './handler.ts'

let opening: Promise<FunctionIngester> | undefined

function open(): Promise<FunctionIngester> {
  opening ??= (async () => {
    const config = loadFunctionConfig()
    const logger = createLogger('ingest-function', config.store.logLevel, 'json')
    return openFunctionIngester(config, logger, 'msk')
  })().catch((err: unknown) => {
    // A failed start is retried by the next invocation, not remembered.
    opening = undefined
    throw err
  })
  return opening
}

// Lambda runs the module's top level in its init phase: the store opens there, while the
// runtime client is still starting. A failure here is met again by the first invocation.
open().catch(() => undefined)

export async function handler(event: MskEvent): Promise<BatchResult> {
  // The event's shape is checked before the store is touched: a wrong trigger fails fast.
  const records = recordsFromMsk(event)
  const fn = await open()
  return handleKafkaBatch(fn.ingestor, records)
}

/** Closes the store of this instance (tests, and a runtime that announces shutdown). */
export async function closeFunction(): Promise<void> {
  const o = opening
  opening = undefined
  if (o) await (await o.catch(() => undefined))?.close()
}
