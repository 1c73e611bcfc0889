// bench/ingest: how fast rows go into chDB, and how long an event takes from the kernel to a
// queryable row.
//   - rows/s per core, syscall-count rows and exec rows: EventBatch records (as they arrive
//     from Kafka) through the ingester's whole path — decode, rows, JSONEachRow, chDB insert —
//     in blocks of BLOCK_ROWS; per core = rows / (process CPU seconds), since chDB's insert
//     threads run in this process too;
//   - input formats: the same syscall-count rows inserted as JSONEachRow, JSONCompactEachRow
//     and TabSeparated (encode + insert), through chDB, which parses them with the server's
//     own input formats;
//   - end to end: a producer makes RATE getppid records/s (a security-syscall record each)
//     for SECONDS; capture → publisher → in-process queue → ingester → chDB, and every event's
//     age (wall clock at the end of its block's insert minus its kernel timestamp).
//   - through a broker (broker.ts): `ebbflow ingest` as its own process from a real local
//     broker, beside ClickHouse's own `file()` parse of the same bytes and ClickHouse's Kafka
//     engine on the same topic, alternating (EBBFLOW_BENCH_INGEST_ONLY=broker: this part only).
// Prints one JSON report and writes bench/reports/ingest.json.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { InProcessPublisher, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import type { CapturedEvent, EventMeta } from '@ebbflow/common'
import { createLogger } from '@ebbflow/common'
import { WallClock, writeEvent } from '@ebbflow/common/wire'
import {
  type Decoded,
  IngestMetrics,
  Ingestor,
  InProcessIngester,
  type InRecord,
  StoreDeadLetters,
} from '@ebbflow/ingester'
import { v1 } from '@ebbflow/proto'
import { ChdbStore, migrate, TABLES, type Table, toJsonEachRow } from '@ebbflow/store'
import protobuf from 'protobufjs'
import { createCgroup } from '../../tests/support/cgroup.ts'
import { toRows } from '../../tests/support/rows.ts'
import { ownParse, throughBroker } from './broker.ts'
import { pieces } from './pieces.ts'

const env = process.env
const COUNT_ROWS = Number(env.EBBFLOW_BENCH_COUNT_ROWS ?? 1_000_000)
const EXEC_ROWS = Number(env.EBBFLOW_BENCH_EXEC_ROWS ?? 300_000)
const BLOCK_ROWS = Number(env.EBBFLOW_BENCH_BLOCK_ROWS ?? 100_000)
const BATCH_EVENTS = 5000
const ROUNDS = Number(env.EBBFLOW_BENCH_INGEST_ROUNDS ?? 2)
const RATE = Number(env.EBBFLOW_BENCH_INGEST_RATE ?? 50_000)
const SECONDS = Number(env.EBBFLOW_BENCH_INGEST_SECONDS ?? 20)
const logger = createLogger('bench', 'warn')

const clock = new WallClock(BigInt(Date.now()) * 1_000_000n - 2_000_000_000_000n)
const meta = (i: number): EventMeta => ({
  node: 'bench-node',
  namespace: `ns-${i % 8}`,
  pod: `pod-${i % 200}`,
  container: 'app',
  workloadKind: 'Deployment',
  workloadName: `wl-${i % 40}`,
  labels: { app: `wl-${i % 40}` },
})

function syscallCounts(n: number): CapturedEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'syscall_count' as const,
    bootNs: 1_000_000_000_000 + Math.floor(i / 300) * 1_000_000,
    intervalNs: 1_000_000_000,
    cgroupId: 5000 + (i % 200),
    syscallNr: i % 300,
    syscall: `sys_${i % 300}`,
    count: 1 + (i % 977),
    meta: meta(i),
  }))
}

function execs(n: number): CapturedEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'exec' as const,
    bootNs: 1_000_000_000_000 + i * 10_000,
    cgroupId: 5000 + (i % 200),
    pid: 10_000 + i,
    tgid: 10_000 + i,
    ppid: 1,
    uid: 1000,
    gid: 1000,
    pidnsIno: 4026531836,
    mntnsIno: 4026531841,
    comm: 'python3',
    parentComm: 'bash',
    filename: '/usr/bin/python3',
    args: ['/usr/bin/python3', '-m', 'app.worker', '--queue', `q-${i % 16}`, `--id=${i}`],
    argsTotalBytes: 60,
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
    meta: meta(i),
  }))
}

/** EventBatch records of `per` events each, as a collector publishes them. */
function records(events: CapturedEvent[], topic: string, per = BATCH_EVENTS): InRecord[] {
  const out: InRecord[] = []
  for (let i = 0; i < events.length; i += per) {
    const w = protobuf.Writer.create()
    const chunk = events.slice(i, i + per)
    for (const e of chunk) writeEvent(w, e, clock)
    const head = v1.EventBatch.encode({
      node: 'bench-node',
      batchId: `b-${topic}-${i}`,
      bootId: 'boot',
      firstTimeNs: clock.toWall(chunk[0]!.bootNs),
      lastTimeNs: clock.toWall(chunk[chunk.length - 1]!.bootNs),
    }).finish()
    out.push({
      topic,
      partition: 0,
      offset: String(out.length),
      key: null,
      value: Buffer.concat([head, w.finish()]),
    })
  }
  return out
}

function cpuSecondsSince(cpu0: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(cpu0)
  return (cpu.user + cpu.system) / 1e6
}

/** The ingester's whole path (header read, ClickHouse's checks, one INSERT … SELECT per table). */
async function ingesterRun(store: ChdbStore, name: string, recs: InRecord[], rows: number) {
  const ingestor = new Ingestor({
    store,
    deadLetters: new StoreDeadLetters(store),
    metrics: new IngestMetrics(),
    logger,
    source: 'bench',
  })
  const perBlock = Math.max(1, Math.round(BLOCK_ROWS / BATCH_EVENTS))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let stored = 0
  for (let i = 0; i < recs.length; i += perBlock) {
    const r = await ingestor.ingestBlock(recs.slice(i, i + perBlock), `${name}-${i}`)
    for (const t of TABLES) if (t !== 'collector_stats') stored += r.rows[t]
  }
  const seconds = (performance.now() - t0) / 1000
  if (stored !== rows) throw new Error(`${name}: stored ${stored} of ${rows}`)
  return { seconds, cpuSeconds: cpuSecondsSince(cpu0) }
}

/**
 * ClickHouse's own parse of the same bytes, nothing else: the same blocks as tmpfs files, one
 * `file()` insert each into a table with the same columns (no rollup views on it, no checks,
 * no deduplication).
 */
async function clickhouseRun(store: ChdbStore, table: Table, recs: InRecord[]) {
  return ownParse(store, table, recs, Math.max(1, Math.round(BLOCK_ROWS / BATCH_EVENTS)))
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * The ingester beside ClickHouse's own parse of the same bytes, alternating A B A B … (ROUNDS
 * each) in one run on this shared machine; medians.
 */
async function ingestRate(
  store: ChdbStore,
  name: string,
  table: Table,
  recs: InRecord[],
  rows: number,
) {
  await store.exec('CREATE DATABASE IF NOT EXISTS ebbflow_bench')
  await store.exec(`CREATE TABLE IF NOT EXISTS ebbflow_bench.${table} AS ebbflow.${table}`)
  const a: { seconds: number; cpuSeconds: number }[] = []
  const b: { seconds: number; cpuSeconds: number }[] = []
  for (let round = 0; round < ROUNDS; round++) {
    a.push(await ingesterRun(store, `${name}-${round}`, recs, rows))
    b.push(await clickhouseRun(store, table, recs))
  }
  const figures = (runs: typeof a) => ({
    seconds: median(runs.map((r) => r.seconds)),
    rowsPerSecondWall: Math.round(rows / median(runs.map((r) => r.seconds))),
    processCpuSeconds: median(runs.map((r) => r.cpuSeconds)),
    rowsPerCpuSecond: Math.round(rows / median(runs.map((r) => r.cpuSeconds))),
  })
  const ingester = figures(a)
  const clickhouse = figures(b)
  return {
    rows,
    blockRows: BLOCK_ROWS,
    rounds: ROUNDS,
    ingester,
    clickhouseOwnParse: clickhouse,
    ingesterShareOfClickhouseRate: Number(
      (ingester.rowsPerSecondWall / clickhouse.rowsPerSecondWall).toFixed(2),
    ),
  }
}

function tsvEscape(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (Array.isArray(v))
    return `[${v.map((x) => `'${String(x).replace(/[\\']/g, '\\$&')}'`).join(',')}]`
  if (v && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `'${k.replace(/[\\']/g, '\\$&')}':'${String(x).replace(/[\\']/g, '\\$&')}'`)
      .join(',')}}`
  return String(v).replace(/[\\\t\n]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\\\'))
}

async function formats(store: ChdbStore) {
  const rows = toRows(syscallCounts(COUNT_ROWS), {
    offsetNs: clock.offsetNs,
    node: 'bench-node',
  }).syscall_counts
  const columns = Object.keys(rows[0]!)
  const encoders: Record<'JSONEachRow' | 'JSONCompactEachRow' | 'TabSeparated', () => Buffer> = {
    JSONEachRow: () => Buffer.from(toJsonEachRow(rows)),
    JSONCompactEachRow: () => {
      let out = ''
      for (const r of rows)
        out += `${JSON.stringify(
          columns.map((c) => r[c]),
          (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
        )}\n`
      return Buffer.from(out)
    },
    TabSeparated: () => {
      let out = ''
      for (const r of rows) out += `${columns.map((c) => tsvEscape(r[c])).join('\t')}\n`
      return Buffer.from(out)
    },
  }
  const out: Record<string, unknown> = {}
  for (const [format, encode] of Object.entries(encoders) as [
    keyof typeof encoders,
    () => Buffer,
  ][]) {
    await store.exec('TRUNCATE TABLE ebbflow.syscall_counts')
    const t0 = performance.now()
    const body = encode()
    const t1 = performance.now()
    for (let i = 0; i < 10; i++) {
      // Ten inserts of a tenth each, as the ingester's blocks would be.
      const from = Math.floor((body.length * i) / 10)
      const to = Math.floor((body.length * (i + 1)) / 10)
      const start = i === 0 ? 0 : body.indexOf(10, from) + 1
      const end = i === 9 ? body.length : body.indexOf(10, to) + 1
      // The body inline after FORMAT: the statement's text is the only raw-body route the
      // store offers (the product inserts protobuf through file(), JSON through insert()).
      await store.exec(
        `INSERT INTO ebbflow.syscall_counts SETTINGS deduplicate_insert = 'disable' FORMAT ${format}\n${body.subarray(start, end).toString('utf8')}`,
      )
    }
    const t2 = performance.now()
    const [c] = await store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.syscall_counts')
    if (Number(c!.n) !== rows.length) throw new Error(`${format}: ${c!.n} of ${rows.length} rows`)
    out[format] = {
      bytesPerRow: Math.round(body.length / rows.length),
      encodeSeconds: (t1 - t0) / 1000,
      insertSeconds: (t2 - t1) / 1000,
      rowsPerSecond: Math.round(rows.length / ((t2 - t0) / 1000)),
    }
  }
  return { rows: rows.length, table: 'syscall_counts', byFormat: out }
}

/**
 * Whether the codecs pay: each filled table copied into tables of the same columns with only
 * ClickHouse's default (LZ4) and with ZSTD(1) everywhere, compared by compressed bytes, in
 * total and for the columns where the schema's choice matters most.
 */
async function codecs(store: ChdbStore) {
  const out: Record<string, unknown> = {}
  for (const table of ['process_events', 'syscall_counts']) {
    const sizes: Record<string, number> = {}
    const byColumn: Record<string, Record<string, number>> = {}
    const cols = await store.query<{ name: string; type: string; codec: string }>(
      `SELECT name, type, compression_codec AS codec FROM system.columns
       WHERE database = 'ebbflow' AND table = {t:String} ORDER BY position`,
      { t: table },
    )
    for (const variant of ['schema', 'lz4', 'zstd1'] as const) {
      const name = `${table}_codec_${variant}`
      const codecOf = (c: { codec: string }) =>
        variant === 'schema' ? c.codec : variant === 'lz4' ? 'CODEC(LZ4)' : 'CODEC(ZSTD(1))'
      await store.exec(`DROP TABLE IF EXISTS ebbflow.${name}`)
      // Wide parts keep each column in its own file, so its size can be read per column.
      await store.exec(
        `CREATE TABLE ebbflow.${name} (${cols.map((c) => `\`${c.name}\` ${c.type} ${codecOf(c)}`).join(', ')})
         ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY (namespace, pod, time)
         SETTINGS min_bytes_for_wide_part = 0`,
      )
      await store.exec(
        `INSERT INTO ebbflow.${name} SELECT * FROM ebbflow.${table} SETTINGS deduplicate_insert = 'disable'`,
      )
      await store.exec(`OPTIMIZE TABLE ebbflow.${name} FINAL`)
      const sized = await store.query<{ name: string; bytes: string }>(
        `SELECT column AS name, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns
         WHERE database = 'ebbflow' AND table = {t:String} AND active GROUP BY column`,
        { t: name },
      )
      sizes[variant] = sized.reduce((n, c) => n + Number(c.bytes), 0)
      for (const c of sized) {
        byColumn[c.name] ??= {}
        byColumn[c.name]![variant] = Number(c.bytes)
      }
      await store.exec(`DROP TABLE ebbflow.${name}`)
    }
    const [rows] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${table}`)
    const interesting = Object.entries(byColumn)
      .sort((a, b) => (b[1].lz4 ?? 0) - (a[1].lz4 ?? 0))
      .slice(0, 8)
      .map(([column, v]) => ({ column, ...v }))
    out[table] = {
      rows: Number(rows!.n),
      compressedBytes: sizes,
      bytesPerRow: Object.fromEntries(
        Object.entries(sizes).map(([k, v]) => [k, Math.round((v / Number(rows!.n)) * 10) / 10]),
      ),
      largestColumnsUnderLz4: interesting,
    }
  }
  return out
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

async function endToEnd(store: ChdbStore) {
  const ages: number[] = []
  const real = new Ingestor({
    store,
    deadLetters: new StoreDeadLetters(store),
    metrics: new IngestMetrics(),
    logger,
    source: 'bench',
  })
  const measuring = {
    async ingestBlock(recs: readonly InRecord[], token: string, decoded?: readonly Decoded[]) {
      const r = await real.ingestBlock(recs, token, decoded)
      const nowNs = BigInt(Date.now()) * 1_000_000n
      // The ingester no longer decodes events: each batch's oldest event (first_time_ns) stands
      // for the batch, the slowest of its events to become a row.
      for (const d of decoded ?? [])
        if (d.ok && d.header.firstTimeNs > 0n) ages.push(Number(nowNs - d.header.firstTimeNs) / 1e9)
      return r
    },
    fault: (point: Parameters<Ingestor['fault']>[0]) => real.fault(point),
  } as unknown as Ingestor
  const config = loadCollectorConfig(
    { families: 'syscall', securitySyscalls: 'getppid', counterIntervalMs: '1000', output: 'json' },
    {},
  )
  const publisher = new InProcessPublisher(config, logger)
  const ingester = new InProcessIngester(measuring, logger)
  const consuming = ingester.consume(publisher.transport.consume())
  const capture = KernelCapture.start(config, publisher, logger)
  const cg = createCgroup('bench-ingest')
  const producer = `use Time::HiRes qw(time sleep); my ($r, $d) = (${RATE}, ${SECONDS}); my $t0 = time; my $n = 0;
    while ((my $e = time - $t0) < $d) { my $target = $e * $r; while ($n < $target) { getppid(); $n++ } sleep(0.0005) }
    print "$n\\n";`
  try {
    const result = await cg.run(['perl', '-e', producer])
    if (result.code !== 0) throw new Error(result.stderr)
    await new Promise((r) => setTimeout(r, 500))
    capture.pollCounters()
    await capture.stop()
    const stats = await publisher.close()
    await publisher.transport.close()
    await consuming
    const sorted = ages.sort((a, b) => a - b)
    return {
      targetEventsPerSecond: RATE,
      seconds: SECONDS,
      produced: Number(result.stdout.trim()),
      captured: capture.stats().records,
      kernelDrops: capture.stats().dropped,
      publisherDrops: stats.droppedEvents,
      measuredEvents: sorted.length,
      p50Seconds: quantile(sorted, 0.5),
      p99Seconds: quantile(sorted, 0.99),
      maxSeconds: sorted.at(-1) ?? Number.NaN,
      blocks: ingester.stats.blocks,
    }
  } finally {
    await cg.remove()
  }
}

/**
 * Cold start to first insert: a fresh process per run (node startup, imports, handler setup)
 * until one MSK event's rows are stored; the store's own latency (opening chDB with its schema
 * check, and the insert) is reported apart and left out of the figure the target is about.
 */
function coldStart(dir: string) {
  const batch = records(execs(100), 'ebbflow.exec.v1')[0]!.value!.toString('base64')
  const runs: Record<string, number>[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const r = spawnSync(
      process.execPath,
      [join(import.meta.dirname, 'cold-start.ts'), join(dir, `cold-${i}`), batch],
      { encoding: 'utf8' },
    )
    const wallMs = performance.now() - t0
    if (r.status !== 0) throw new Error(`cold start failed: ${r.stderr}`)
    const t = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>
    // The child's clock starts after node itself started: node's own start-up is the rest.
    const childMs = t.importMs! + t.storeOpenAndMigrateMs! + t.handlerSetupMs! + t.insertMs!
    runs.push({
      ...t,
      nodeStartMs: Math.max(0, wallMs - childMs),
      toFirstInsertExcludingStoreMs: wallMs - t.storeOpenAndMigrateMs! - t.insertMs!,
    })
  }
  const median = (k: string) => [...runs.map((r) => r[k]!)].sort((a, b) => a - b)[2]!
  return {
    runs: runs.length,
    medianToFirstInsertExcludingStoreMs: Math.round(median('toFirstInsertExcludingStoreMs')),
    medianNodeStartMs: Math.round(median('nodeStartMs')),
    medianImportMs: Math.round(median('importMs')),
    medianStoreOpenAndMigrateMs: Math.round(median('storeOpenAndMigrateMs')),
    medianInsertMs: Math.round(median('insertMs')),
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-ingest-'))
try {
  const store = await ChdbStore.open(join(dir, 'data'))
  await migrate(store)
  const countRecs = records(syscallCounts(COUNT_ROWS), 'ebbflow.syscall.v1')
  const execRecs = records(execs(EXEC_ROWS), 'ebbflow.exec.v1')
  // ONLY=broker: the `ebbflow ingest` figures alone (the other parts take minutes).
  const all = env.EBBFLOW_BENCH_INGEST_ONLY === undefined
  const report = {
    bench: 'ingest',
    machine: { cpus: cpus().length, model: cpus()[0]?.model },
    // Records as a collector sends them to Kafka (under the broker's 1 MiB message limit).
    // PIECES=1: where the ingester's CPU goes (pieces.ts), the same records in process.
    ...(env.EBBFLOW_BENCH_INGEST_PIECES === '1'
      ? {
          pieces: await pieces(
            store,
            [
              {
                name: 'syscallCountRows',
                table: 'syscall_counts',
                records: records(syscallCounts(COUNT_ROWS), 'ebbflow.syscall.v1', 2000),
                rows: COUNT_ROWS,
                perBlock: Math.max(1, Math.round(BLOCK_ROWS / 2000)),
              },
              {
                name: 'execRows',
                table: 'process_events',
                records: records(execs(EXEC_ROWS), 'ebbflow.exec.v1', 1000),
                rows: EXEC_ROWS,
                // `ebbflow ingest` cuts these blocks at 16 MiB first (~80 records).
                perBlock: Math.min(80, Math.max(1, Math.round(BLOCK_ROWS / 1000))),
              },
            ],
            ROUNDS,
          ),
        }
      : {}),
    throughBroker:
      env.EBBFLOW_BENCH_INGEST_ONLY === 'pieces'
        ? 'skipped: EBBFLOW_BENCH_INGEST_ONLY=pieces'
        : spawnSync('java', ['-version']).status === 0
          ? await throughBroker(
              store,
              dir,
              [
                {
                  name: 'syscallCountRows',
                  family: 'syscall',
                  topic: 'ebbflow.syscall.v1',
                  table: 'syscall_counts',
                  records: records(syscallCounts(COUNT_ROWS), 'ebbflow.syscall.v1', 2000),
                  rows: COUNT_ROWS,
                },
                {
                  name: 'execRows',
                  family: 'exec',
                  topic: 'ebbflow.exec.v1',
                  table: 'process_events',
                  records: records(execs(EXEC_ROWS), 'ebbflow.exec.v1', 1000),
                  rows: EXEC_ROWS,
                },
              ],
              ROUNDS,
              BLOCK_ROWS,
            )
          : 'skipped: needs Java 17+ for the local Kafka broker',
    ...(all
      ? {
          syscallCountRows: await ingestRate(
            store,
            'counts',
            'syscall_counts',
            countRecs,
            COUNT_ROWS,
          ),
          execRows: await ingestRate(store, 'execs', 'process_events', execRecs, EXEC_ROWS),
        }
      : {}),
    ...(env.EBBFLOW_BENCH_INGEST_EXTRAS === '1'
      ? { codecs: await codecs(store), formats: await formats(store) }
      : {}),
    ...(all
      ? {
          serverlessColdStart: coldStart(dir),
          endToEnd: process.getuid?.() === 0 ? await endToEnd(store) : 'skipped: needs root',
        }
      : {}),
    targets: {
      syscallCountRowsPerSecondPerCore: 1_000_000,
      execRowsPerSecondPerCore: 300_000,
      endToEndP99Seconds: 2,
      coldStartToFirstInsertExcludingStoreMs: 500,
    },
    tables: TABLES.length,
  }
  await store.close()
  const text = JSON.stringify(report, null, 2)
  process.stdout.write(`${text}\n`)
  mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
  writeFileSync(join(import.meta.dirname, '../reports/ingest.json'), text)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
