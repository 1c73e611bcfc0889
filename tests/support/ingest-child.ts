// A Kafka ingester in its own process, for the crash test: `--crash-after-insert` SIGKILLs the
// process right after its first block's rows are stored and before the offset is committed.
// After each block it prints one JSON line: the rows per table as the store now has them.
// Usage: node ingest-child.ts BROKERS DATA_DIR GROUP [--crash-after-insert]
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import type { InRecord } from '@ebbflow/ingester'
import { IngestMetrics, Ingestor, KafkaDeadLetters, KafkaIngester } from '@ebbflow/ingester'
import { ChdbStore, migrate, TABLES } from '@ebbflow/store'

const [brokers, dataDir, groupId, flag] = process.argv.slice(2)
const logger = createLogger('ingest-child', 'info')
const store = await ChdbStore.open(dataDir!)
await migrate(store)
const metrics = new IngestMetrics()
const deadLetters = new KafkaDeadLetters([brokers!])
const real = new Ingestor({ store, deadLetters, metrics, logger, source: 'kafka' })
const crash = flag === '--crash-after-insert'

async function report(): Promise<void> {
  const rows: Record<string, number> = {}
  for (const t of TABLES) {
    const [r] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${t}`)
    rows[t] = Number(r!.n)
  }
  process.stdout.write(`${JSON.stringify({ rows })}\n`)
}

const ingestor = {
  async ingestBlock(records: readonly InRecord[], token: string, decoded?: never) {
    const r = await real.ingestBlock(records, token, decoded)
    process.stdout.write(`${JSON.stringify({ block: token, records: records.length })}\n`)
    if (crash) process.kill(process.pid, 'SIGKILL')
    await report()
    return r
  },
  // The Kafka ingester passes its own fault point (after the insert) through the ingestor.
  fault: (point: Parameters<Ingestor['fault']>[0]) => real.fault(point),
} as unknown as Ingestor

const consumer = new KafkaIngester(
  {
    brokers: [brokers!],
    groupId: groupId!,
    topics: Object.values(TOPICS),
    maxRows: 1000,
    maxWaitMs: 100,
    minBytes: 1,
  },
  ingestor,
  metrics,
  logger,
)
await consumer.start()
await report()
process.on('SIGTERM', () => {
  consumer
    .stop()
    .then(() => deadLetters.close())
    .then(() => store.close())
    .then(() => process.exit(0))
})
