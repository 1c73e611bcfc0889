// Prints the rows of one SQL query over a chDB folder as a JSON array, for a test whose service
// under test had the folder open (chDB opens one folder per process).
// Usage: node read-query.ts DATA_DIR SQL
import { ChdbStore } from '@ebbflow/store'

const [dataDir, sql] = process.argv.slice(2)
const store = await ChdbStore.open(dataDir!)
process.stdout.write(JSON.stringify(await store.query(sql!)))
await store.close()
