// bench/ledger: what the batch ledger (migration 0006) adds to storing a block. The same blocks
// of exec rows are inserted into chDB with and without the ledger's one extra insert (a row
// per batch), alternating A B A B on one store so the shared machine's noise falls on both;
// medians per block. EBBFLOW_BENCH_ROUNDS (default 8), EBBFLOW_BENCH_BLOCK_BATCHES (default
// 40 batches of 500 execs: a 20,000-row block).
// Prints one JSON report and writes bench/reports/ledger.json.
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CapturedEvent } from '@ebbflow/common'
import { type LedgerEntry, recordBatches } from '@ebbflow/ingester'
import { ChdbStore, migrate } from '@ebbflow/store'
import { insertRows, toRows } from '../../tests/support/rows.ts'

const env = process.env
const ROUNDS = Number(env.EBBFLOW_BENCH_ROUNDS ?? 8)
const BATCHES = Number(env.EBBFLOW_BENCH_BLOCK_BATCHES ?? 40)
const BATCH_EVENTS = 500

const nowBoot = 1_000_000_000_000
const offsetNs = BigInt(Date.now()) * 1_000_000n - BigInt(nowBoot)

function execs(n: number, from: number): CapturedEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'exec' as const,
    bootNs: nowBoot + (from + i) * 1000,
    cgroupId: 5000 + (i % 200),
    pid: 10_000 + ((from + i) % 4_000_000),
    tgid: 10_000 + ((from + i) % 4_000_000),
    ppid: 1,
    uid: 1000,
    gid: 1000,
    pidnsIno: 4026531836,
    mntnsIno: 4026531841,
    comm: 'python3',
    parentComm: 'bash',
    filename: '/usr/bin/python3',
    args: ['/usr/bin/python3', '-m', 'app.worker', `--id=${from + i}`],
    argsTotalBytes: 40,
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
    meta: { node: 'bench-node', namespace: 'default', pod: `web-${i % 50}` },
  }))
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-ledger-'))
  const store = await ChdbStore.open(dir)
  try {
    await migrate(store)
    const instance = randomUUID()
    let sequence = 0
    let next = 0
    const block = () => {
      const events = execs(BATCHES * BATCH_EVENTS, next)
      next += events.length
      const headers: LedgerEntry[] = Array.from({ length: BATCHES }, (_, b) => ({
        topic: 'ebbflow.exec.v1',
        header: {
          node: 'bench-node',
          bootId: 'boot',
          collectorInstanceId: instance,
          sequence: BigInt(sequence++),
          batchId: `${instance}-ebbflow.exec.v1-${sequence}`,
          firstTimeNs: offsetNs + BigInt(events[b * BATCH_EVENTS]!.bootNs),
          lastTimeNs: offsetNs + BigInt(events[(b + 1) * BATCH_EVENTS - 1]!.bootNs),
          events: { exec: BATCH_EVENTS },
          total: BATCH_EVENTS,
          droppedBatches: 0,
          droppedEvents: 0,
        },
      }))
      return { rows: toRows(events, { offsetNs, node: 'bench-node', bootId: 'boot' }), headers }
    }
    // Warm: the first inserts create parts and caches.
    const warm = block()
    await insertRows(store, warm.rows, { dedupToken: 'warm' })
    await recordBatches(store, warm.headers, 'warm')
    const without: number[] = []
    const withLedger: number[] = []
    const ledgerAlone: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const a = block()
      let t0 = performance.now()
      await insertRows(store, a.rows, { dedupToken: `a-${r}` })
      without.push(performance.now() - t0)
      const b = block()
      t0 = performance.now()
      await insertRows(store, b.rows, { dedupToken: `b-${r}` })
      const t1 = performance.now()
      await recordBatches(store, b.headers, `b-${r}`)
      const t2 = performance.now()
      withLedger.push(t2 - t0)
      ledgerAlone.push(t2 - t1)
    }
    const report = {
      rounds: ROUNDS,
      rowsPerBlock: BATCHES * BATCH_EVENTS,
      batchesPerBlock: BATCHES,
      medianBlockMsWithout: median(without),
      medianBlockMsWithLedger: median(withLedger),
      medianLedgerInsertMs: median(ledgerAlone),
      overheadPercent: (median(withLedger) / median(without) - 1) * 100,
      note: 'A B alternated on one chDB store, shared 2-core VM',
    }
    const out = `${JSON.stringify(report, null, 2)}\n`
    process.stdout.write(out)
    const reports = join(import.meta.dirname, '../reports')
    mkdirSync(reports, { recursive: true })
    writeFileSync(join(reports, 'ledger.json'), out)
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
