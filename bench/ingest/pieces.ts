// bench/ingest, where the ingester's CPU goes beyond ClickHouse's own parse: the real Ingestor
// over the bench's chDB, with one piece of its work turned off at a time (a bench-only store
// wrapper, never in the product), alternating every variant per round in one run; medians.
//
//   full        the ingester as shipped
//   noChecks    no per-event checks: no checked insert, no validation pass (plain inserts)
//   noViews     the raw table's rollup views detached for the run
//   noDedup     no deduplication token on any statement (ClickHouse's hashing off)
//   noLedgerLag no batch_ledger row, no ingest_lag row per record
//   bigBlocks   the ingester as shipped, blocks 4× as large
//   ownParse    ClickHouse's own `file()` parse of the same blocks into a copy of the table
//
// A piece's cost is full − the variant without it, as CPU ms per 100,000 rows (the process's
// CPU: chDB's threads run inside it).

import { loadavg } from 'node:os'
import { createLogger } from '@ebbflow/common'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import type { BatchInput, ChdbStore, InsertOptions, Store, Table } from '@ebbflow/store'
import { ownParse } from './broker.ts'

const logger = createLogger('bench', 'warn')

type Variant = 'full' | 'noChecks' | 'noViews' | 'noDedup' | 'noLedgerLag' | 'bigBlocks'
const VARIANTS: readonly Variant[] = [
  'full',
  'noChecks',
  'noViews',
  'noDedup',
  'noLedgerLag',
  'bigBlocks',
]

/** The store the Ingestor sees: the bench's chDB with one piece taken away. */
function variantStore(store: ChdbStore, v: Variant): Store {
  const strip = (o?: InsertOptions): InsertOptions | undefined => (v === 'noDedup' ? {} : o)
  return {
    exec: (sql) => store.exec(sql),
    query: (sql, params) => store.query(sql, params),
    insert: (table, rows, options) =>
      v === 'noLedgerLag' &&
      (table === 'ebbflow.batch_ledger' || table === 'ebbflow.collector_stats')
        ? Promise.resolve()
        : store.insert(table, rows, strip(options)),
    close: () => Promise.resolve(),
    batchInput: async (body): Promise<BatchInput> => {
      const input = await store.batchInput(body)
      return {
        query: v === 'noChecks' ? async () => [] : input.query,
        insert: (build, options) => input.insert(build, strip(options)),
        release: input.release,
        checkedInsert: v === 'noChecks' ? false : input.checkedInsert,
      }
    },
  }
}

/** The materialized views that read `table`, by name. */
async function viewsOf(store: ChdbStore, table: Table): Promise<string[]> {
  // system.tables' dependencies_table is empty for these on chDB: read the views' own text.
  const rows = await store.query<{ name: string }>(
    `SELECT name FROM system.tables WHERE database = 'ebbflow' AND engine = 'MaterializedView' AND (position(create_table_query, 'FROM ebbflow.${table} ') > 0 OR endsWith(create_table_query, 'FROM ebbflow.${table}'))`,
  )
  return rows.map((r) => r.name)
}

interface Run {
  cpuSeconds: number
  seconds: number
}

async function ingestRun(
  store: ChdbStore,
  v: Variant,
  name: string,
  recs: InRecord[],
  perBlock: number,
): Promise<Run> {
  const ingestor = new Ingestor({
    store: variantStore(store, v),
    deadLetters: new StoreDeadLetters(store),
    metrics: new IngestMetrics(),
    logger,
    source: 'bench',
  })
  const per = v === 'bigBlocks' ? perBlock * 4 : perBlock
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < recs.length; i += per) {
    const r = await ingestor.ingestBlock(recs.slice(i, i + per), `${name}-${i}`)
    if (r.deadLetters > 0) throw new Error(`${name}: ${r.deadLetters} dead letters`)
  }
  const cpu = process.cpuUsage(cpu0)
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, seconds: (performance.now() - t0) / 1000 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export interface PiecesCase {
  name: string
  table: Table
  records: InRecord[]
  rows: number
  /** Records per block (the ingester's block: rows and bytes both bound it). */
  perBlock: number
}

/** Every variant of every case, `rounds` times, alternating. */
export async function pieces(store: ChdbStore, cases: PiecesCase[], rounds: number) {
  await store.exec('CREATE DATABASE IF NOT EXISTS ebbflow_bench')
  const out: Record<string, unknown> = {}
  for (const c of cases) {
    await store.exec(`CREATE TABLE IF NOT EXISTS ebbflow_bench.${c.table} AS ebbflow.${c.table}`)
    const views = await viewsOf(store, c.table)
    const runs: Record<Variant | 'ownParse', Run[]> = {
      full: [],
      noChecks: [],
      noViews: [],
      noDedup: [],
      noLedgerLag: [],
      bigBlocks: [],
      ownParse: [],
    }
    for (let round = 0; round < rounds; round++) {
      for (const v of VARIANTS) {
        if (v === 'noViews')
          for (const view of views) await store.exec(`DETACH VIEW ebbflow.${view}`)
        try {
          runs[v].push(
            await ingestRun(store, v, `pieces-${c.name}-${v}-${round}`, c.records, c.perBlock),
          )
        } finally {
          if (v === 'noViews')
            for (const view of views) await store.exec(`ATTACH TABLE ebbflow.${view}`)
        }
      }
      runs.ownParse.push(await ownParse(store, c.table, c.records, c.perBlock))
    }
    const per100k = (v: Variant | 'ownParse') =>
      Math.round((median(runs[v].map((r) => r.cpuSeconds)) * 1000 * 100_000) / c.rows)
    const full = per100k('full')
    out[c.name] = {
      rows: c.rows,
      recordsPerBlock: c.perBlock,
      rounds,
      views,
      loadAverage: loadavg().map((l) => Number(l.toFixed(1))),
      cpuMsPer100kRows: Object.fromEntries(
        [...VARIANTS, 'ownParse' as const].map((v) => [v, per100k(v)]),
      ),
      pieceCpuMsPer100kRows: {
        checks: full - per100k('noChecks'),
        rollupViews: full - per100k('noViews'),
        dedupTokens: full - per100k('noDedup'),
        ledgerAndLag: full - per100k('noLedgerLag'),
        blocks4xSaves: full - per100k('bigBlocks'),
        beyondOwnParse: full - per100k('ownParse'),
      },
      rowsPerCpuSecond: Object.fromEntries(
        [...VARIANTS, 'ownParse' as const].map((v) => [
          v,
          Math.round(c.rows / median(runs[v].map((r) => r.cpuSeconds))),
        ]),
      ),
    }
  }
  return out
}
