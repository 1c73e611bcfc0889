// Prints, one per line, the exec identities (node|boot id|tgid|time ns|kind) a chDB folder
// holds for one node. A child process of its own: chDB opens one folder per process.
// Usage: node read-execs.ts DATA_DIR NODE
import { ChdbStore } from '@ebbflow/store'

const [dataDir, node] = process.argv.slice(2)
const store = await ChdbStore.open(dataDir!)
const rows = await store.query<{ id: string }>(
  `SELECT concat(node, '|', boot_id, '|', toString(tgid), '|',
          toString(toUnixTimestamp64Nano(time)), '|', toString(kind)) AS id
   FROM ebbflow.process_events WHERE node = '${node!.replaceAll("'", '')}'`,
)
process.stdout.write(rows.map((r) => `${r.id}\n`).join(''))
await store.close()
