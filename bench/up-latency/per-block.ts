// bench/up-latency/per-block.ts: CPU per block of the in-process ingester's statements on chDB,
// with small blocks (the embedded mode at low rates is per-block cost, not per-event cost):
// the Ingestor's whole block, and each statement of it alone: the check pass, the plain insert,
// the checked insert (all families' checks, then only the block's), a one-row JSON insert (the
// ledger and ingest_lag rows). EBBFLOW_BENCH_BLOCKS (40) blocks of EBBFLOW_BENCH_EVENTS (2,500)
// syscall events each. Prints JSON (no report file: a probe, not a figure of an issue).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, lengthDelimited, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import {
  ChdbStore,
  checkedInsertStatement,
  insertStatement,
  migrate,
  validationStatement,
} from '@ebbflow/store'

const BLOCKS = Number(process.env.EBBFLOW_BENCH_BLOCKS ?? 40)
const EVENTS = Number(process.env.EBBFLOW_BENCH_EVENTS ?? 2500)
const t0 = BigInt(Date.now() - 10_000) * 1_000_000n
let seq = 0
function record() {
  seq++
  const at = (i: number) => Long.fromString((t0 + BigInt(seq * 1_000_000 + i)).toString(), true)
  return Buffer.from(
    v1.EventBatch.encode({
      node: 'n',
      batchId: `b${seq}`,
      bootId: 'boot',
      sequence: Long.fromNumber(seq, true),
      firstTimeNs: at(0),
      lastTimeNs: at(EVENTS),
      syscall: Array.from({ length: EVENTS }, (_, i) => ({
        timeNs: at(i),
        task: { pid: 100, tgid: 100, comm: 'perl' },
        syscallNr: 121,
        syscall: 'getpgid',
        args: [Long.fromNumber(i, true)],
      })),
    } as never).finish(),
  )
}
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
const tmp = mkdtempSync(join(tmpdir(), 'ebbflow-per-block-'))
const store = await ChdbStore.open(join(tmp, 'data'))
await migrate(store)
const ingestor = new Ingestor({
  store,
  deadLetters: new StoreDeadLetters(store),
  metrics: new IngestMetrics(),
  logger: createLogger('b', 'silent'),
  source: 'b',
})
const out: Record<string, number> = {}
async function measure(name: string, run: (i: number) => Promise<void>) {
  await run(-1)
  const c = cpu()
  const w = performance.now()
  for (let i = 0; i < BLOCKS; i++) await run(i)
  out[`${name} cpu ms/block`] = Math.round(((cpu() - c) * 1000) / BLOCKS)
  out[`${name} wall ms/block`] = Math.round((performance.now() - w) / BLOCKS)
}
let token = 0
await measure('ingestBlock', async () => {
  await ingestor.ingestBlock(
    [{ topic: TOPICS.syscall, partition: 0, offset: '0', key: null, value: record() }],
    `t${token++}`,
  )
})
const body = () => lengthDelimited([record()])
await measure('validation query', async () => {
  const b = await store.batchInput!(body())
  await b.query(validationStatement)
  await b.release()
})
await measure('insert', async () => {
  const b = await store.batchInput!(body())
  await b.insert((s) => insertStatement('syscall_events', s), { dedupToken: `i${token++}` })
  await b.release()
})
await measure('checked insert', async () => {
  const b = await store.batchInput!(body())
  await b.insert((s) => checkedInsertStatement('syscall_events', s)!, { dedupToken: `c${token++}` })
  await b.release()
})
await measure('checked insert, present families', async () => {
  const b = await store.batchInput!(body())
  await b.insert((s) => checkedInsertStatement('syscall_events', s, ['syscall'])!, {
    dedupToken: `p${token++}`,
  })
  await b.release()
})
await measure('json insert 1 row', async () => {
  await store.insert(
    'ebbflow.collector_stats',
    [
      {
        time: '1700000000.000',
        node: 'n',
        boot_id: 'b',
        metric: 'm',
        family: 'f',
        reason: '',
        value: 1,
      },
    ],
    { dedupToken: `j${token++}` },
  )
})
await measure('select 1', async () => {
  await store.query('SELECT 1')
})
process.stdout.write(
  `${JSON.stringify({ blocks: BLOCKS, eventsPerBlock: EVENTS, ...out }, null, 2)}\n`,
)
await store.close()
rmSync(tmp, { recursive: true, force: true })
