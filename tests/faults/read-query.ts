// Prints the rows of one SQL query over a chDB folder as a JSON array, for a test whose service
// under test had the folder open (chDB opens one folder per process); with --exec, runs each
// statement given instead (DDL a test applies between two runs of a service).
// Usage: node read-query.ts DATA_DIR SQL | node read-query.ts DATA_DIR --exec STATEMENT...
import { ChdbStore } from '@ebbflow/store'

const [dataDir, ...rest] = process.argv.slice(2)
const store = await ChdbStore.open(dataDir!)
try {
  if (rest[0] === '--exec') for (const statement of rest.slice(1)) await store.exec(statement)
  else process.stdout.write(JSON.stringify(await store.query(rest[0]!)))
} finally {
  await store.close()
}
