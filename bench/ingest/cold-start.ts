// One cold start of the serverless ingester, run as its own process by main.ts: import the
// handler, open the store, store one Lambda MSK event of one EventBatch, print the timings.
// Usage: node cold-start.ts DATA_DIR BATCH_BASE64
const t0 = performance.now()
const { createLogger } = await import('@ebbflow/common')
const { ChdbStore, migrate } = await import('@ebbflow/store')
const { handleKafkaBatch, Ingestor, IngestMetrics, recordsFromMsk, StoreDeadLetters } =
  await import('@ebbflow/ingester')
const imported = performance.now()
const [dataDir, batch] = process.argv.slice(2)
const store = await ChdbStore.open(dataDir!)
await migrate(store)
const opened = performance.now()
const ingestor = new Ingestor({
  store,
  deadLetters: new StoreDeadLetters(store),
  metrics: new IngestMetrics(),
  logger: createLogger('cold-start', 'warn'),
  source: 'msk',
})
const records = recordsFromMsk({
  eventSource: 'aws:kafka',
  records: {
    'ebbflow.exec.v1-0': [{ topic: 'ebbflow.exec.v1', partition: 0, offset: 1, value: batch! }],
  },
})
const ready = performance.now()
const result = await handleKafkaBatch(ingestor, records)
const inserted = performance.now()
process.stdout.write(
  `${JSON.stringify({
    importMs: imported - t0,
    storeOpenAndMigrateMs: opened - imported,
    handlerSetupMs: ready - opened,
    insertMs: inserted - ready,
    rows: result.rows,
  })}\n`,
)
await store.close()
