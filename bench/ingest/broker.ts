// bench/ingest, the broker part: `ebbflow ingest` as its own process reading a real local
// broker into its own chDB folder, beside ClickHouse's own `file()` parse of the same record
// bytes (in this process's chDB, no checks, no rollups, no deduplication) and ClickHouse's
// Kafka engine (`migrate --kafka-engine`'s statements) reading the same topic — alternating
// A B C A B C in one run on a shared machine, medians.
//
// `ebbflow ingest` is timed from its "ingesting" log line (after its start-up: imports, chDB,
// migrations; before the consumer group's join, which the wall time includes) to the first
// /metrics sample with every row (polled every 200 ms); its CPU is the process's (utime +
// stime from /proc: chDB's threads run inside it) over the same span.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { registerCodecs } from '@ebbflow/common/kafka'
import { type InRecord, lengthDelimited } from '@ebbflow/ingester'
import { PROTO_DIR } from '@ebbflow/proto'
import {
  BATCH_SCHEMA,
  type ChdbStore,
  fileSource,
  insertStatement,
  kafkaEngineStatements,
  spoolChunks,
  type Table,
} from '@ebbflow/store'
import kafkajs, { CompressionTypes, Kafka, logLevel } from 'kafkajs'
import { startBroker } from '../../tests/support/kafka-broker.ts'
import { threadCpuSeconds, threadCpuSince } from '../../tests/support/proc.ts'

const CLI = join(import.meta.dirname, '../../services/cli/src/main.ts')
const BEFORE = process.env.EBBFLOW_BENCH_INGEST_BEFORE
// EBBFLOW_BENCH_INGEST_CODEC: how the records sit on the broker, zstd (default: what a collector
// publishes with its default codec, so the ingester's reads include decompressing them), gzip,
// or none (uncompressed, the bench before this option).
const CODEC = process.env.EBBFLOW_BENCH_INGEST_CODEC ?? 'zstd'
const CODECS: Record<string, CompressionTypes> = {
  zstd: CompressionTypes.ZSTD,
  gzip: CompressionTypes.GZIP,
  none: CompressionTypes.None,
}
if (!(CODEC in CODECS))
  throw new Error(`EBBFLOW_BENCH_INGEST_CODEC: zstd, gzip or none, not ${CODEC}`)
registerCodecs(kafkajs)
// Records per produce request, as a collector's publisher batches them: together under the
// broker's 1 MiB limit uncompressed (the bench's records are ~200 KB).
const PER_REQUEST = 4
const TICKS = 100 // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s.

/** User + system CPU seconds of a process and all its threads so far. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS
}

async function metricRows(port: number, table: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const line = text
    .split('\n')
    .find((l) => l.startsWith('ebbflow_ingest_rows_total{') && l.includes(`table="${table}"`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

interface Run {
  seconds: number
  cpuSeconds: number
  /** `ebbflow ingest`'s CPU seconds over the run by thread name. */
  threads?: Record<string, number>
  /** `ebbflow ingest`'s peak RSS (VmHWM) when every row was stored, MiB. */
  peakRssMiB?: number
}

/** A process's peak RSS so far (VmHWM), MiB. */
function peakRssMiB(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return kb ? Math.round(Number(kb[1]) / 102.4) / 10 : Number.NaN
}

/** One `ebbflow ingest` process over `topic` from its start, in a fresh group and folder. */
async function ingestProcess(
  bootstrap: string,
  topic: string,
  table: Table,
  rows: number,
  dir: string,
  group: string,
  cli = CLI,
): Promise<Run> {
  // EBBFLOW_BENCH_CPU_PROF=DIR: a V8 CPU profile of each `ebbflow ingest` process in DIR.
  const profile = process.env.EBBFLOW_BENCH_CPU_PROF
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []),
      // EBBFLOW_BENCH_NODE_FLAGS: V8 or Node flags for each `ebbflow ingest` process.
      ...(process.env.EBBFLOW_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      cli,
      'ingest',
      '--kafka',
      bootstrap,
      '--data-dir',
      dir,
      '--topics',
      topic,
      '--group-id',
      group,
      '--metrics-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EBBFLOW_LOG_LEVEL: 'info' } },
  )
  let out = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const deadline = Date.now() + 300_000
    let port: number | undefined
    while (port === undefined) {
      const m = /"metricsPort":(\d+)/.exec(out)
      if (m) port = Number(m[1])
      else if (child.exitCode !== null) throw new Error(`ebbflow ingest exited: ${out}`)
      else if (Date.now() > deadline) throw new Error(`ebbflow ingest did not start: ${out}`)
      else await new Promise((r) => setTimeout(r, 20))
    }
    const start = {
      t: performance.now(),
      cpu: processCpuSeconds(child.pid!),
      threads: threadCpuSeconds(child.pid!),
    }
    for (;;) {
      const n = await metricRows(port, table)
      if (n >= rows)
        return {
          seconds: (performance.now() - start.t) / 1000,
          cpuSeconds: processCpuSeconds(child.pid!) - start.cpu,
          threads: threadCpuSince(start.threads, child.pid!),
          peakRssMiB: peakRssMiB(child.pid!),
        }
      if (Date.now() > deadline) throw new Error(`ebbflow ingest stored ${n} of ${rows} rows`)
      // Every 200 ms, as a scraper far more eager than Prometheus: each scrape costs the
      // ingester ~0.5 ms of CPU, so a 20 ms poll charged it ~3 % for the bench's own watching.
      // The wall time is up to 200 ms late; the CPU of a finished ingester does not grow.
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    child.kill('SIGTERM')
    await exited
    // EBBFLOW_BENCH_INGEST_LOG=DIR: each `ebbflow ingest` process's output (its log lines, and
    // whatever EBBFLOW_BENCH_NODE_FLAGS such as --trace-gc print) in DIR/<group>.log.
    const logs = process.env.EBBFLOW_BENCH_INGEST_LOG
    if (logs) writeFileSync(join(logs, `${group}.log`), out)
  }
}

/** ClickHouse's own parse: the same records, a block of `perBlock` per `file()` insert. */
export async function ownParse(
  store: ChdbStore,
  table: Table,
  recs: InRecord[],
  perBlock: number,
): Promise<Run> {
  const path = join('/dev/shm', `ebbflow-bench-broker-${process.pid}.bin`)
  const { rmSync } = await import('node:fs')
  const schema = `format_schema = '${join(PROTO_DIR, BATCH_SCHEMA)}'`
  const sql = insertStatement(table, fileSource(path)).replace(
    `INSERT INTO ebbflow.${table} `,
    `INSERT INTO ebbflow_bench.${table} `,
  )
  // An empty table each round, as each `ebbflow ingest` run gets a fresh folder: otherwise the
  // background merges of earlier rounds' parts run inside this round's CPU time.
  await store.exec(`TRUNCATE TABLE ebbflow_bench.${table}`)
  const threads0 = threadCpuSeconds()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < recs.length; i += perBlock) {
    // Handed over as the product's chDB store does: the chunks with writev, no copy into one.
    await spoolChunks(path, lengthDelimited(recs.slice(i, i + perBlock).map((r) => r.value!)))
    await store.exec(`${sql} SETTINGS ${schema}, deduplicate_insert = 'disable'`)
  }
  const seconds = (performance.now() - t0) / 1000
  rmSync(path, { force: true })
  const cpu = process.cpuUsage(cpu0)
  const threads = threadCpuSince(threads0)
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, threads }
}

/** ClickHouse's Kafka engine over the topic, from its start to every row, in this process. */
async function kafkaEngine(
  store: ChdbStore,
  bootstrap: string,
  family: string,
  topic: string,
  table: Table,
  rows: number,
  run: string,
): Promise<Run> {
  const [before] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${table}`)
  const base = Number(before!.n)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const key = `${family}_${run}`
  for (const sql of kafkaEngineStatements({
    brokers: bootstrap,
    topics: { [key]: topic },
    group: `bench-engine-${run}`,
    schema: join(PROTO_DIR, BATCH_SCHEMA),
    flushIntervalMs: 500,
  }))
    await store.exec(sql)
  const deadline = Date.now() + 300_000
  for (;;) {
    const [c] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${table}`)
    if (Number(c!.n) - base >= rows) break
    if (Date.now() > deadline)
      throw new Error(`Kafka engine stored ${Number(c!.n) - base} of ${rows}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await store.exec(`DROP TABLE IF EXISTS ebbflow.kafka_${key}`)
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function figures(runs: Run[], rows: number) {
  const seconds = median(runs.map((r) => r.seconds))
  const cpuSeconds = median(runs.map((r) => r.cpuSeconds))
  return {
    seconds: Number(seconds.toFixed(2)),
    rowsPerSecondWall: Math.round(rows / seconds),
    cpuSeconds: Number(cpuSeconds.toFixed(2)),
    rowsPerCpuSecond: Math.round(rows / cpuSeconds),
    // Each round's, in run order: how far apart the rounds were.
    cpuSecondsEach: runs.map((r) => Number(r.cpuSeconds.toFixed(2))),
    ...(runs[0]?.threads ? { threadCpuSecondsEach: runs.map((r) => r.threads) } : {}),
    ...(runs[0]?.peakRssMiB !== undefined ? { peakRssMiBEach: runs.map((r) => r.peakRssMiB) } : {}),
  }
}

export interface BrokerCase {
  name: string
  family: string
  topic: string
  table: Table
  records: InRecord[]
  rows: number
}

/** Every case through the three routes, `rounds` times each, alternating. */
export async function throughBroker(
  store: ChdbStore,
  dir: string,
  cases: BrokerCase[],
  rounds: number,
  blockRows: number,
) {
  const broker = await startBroker()
  try {
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const admin = kafka.admin()
    await admin.connect()
    await store.exec('CREATE DATABASE IF NOT EXISTS ebbflow_bench')
    const out: Record<string, unknown> = {}
    for (const c of cases) {
      await admin.createTopics({ topics: [{ topic: c.topic }], waitForLeaders: true })
      for (let i = 0; i < c.records.length; i += PER_REQUEST)
        await producer.send({
          topic: c.topic,
          compression: CODECS[CODEC],
          messages: c.records
            .slice(i, i + PER_REQUEST)
            .map((r) => ({ key: 'bench-node', value: r.value })),
        })
      await store.exec(`CREATE TABLE IF NOT EXISTS ebbflow_bench.${c.table} AS ebbflow.${c.table}`)
      const perRecord = c.rows / c.records.length
      const perBlock = Math.max(1, Math.round(blockRows / perRecord))
      const a: Run[] = []
      const b: Run[] = []
      const e: Run[] = []
      const before: Run[] = []
      for (let round = 0; round < rounds; round++) {
        const run = `${c.name}_${round}`
        // EBBFLOW_BENCH_INGEST_BEFORE=DIR: also `ebbflow ingest` of another checkout (the code
        // before a change), alternating with this one's in the same run.
        if (BEFORE)
          before.push(
            await ingestProcess(
              broker.bootstrap,
              c.topic,
              c.table,
              c.rows,
              join(dir, `before-${run}`),
              `bench-before-${run}`,
              join(BEFORE, 'services/cli/src/main.ts'),
            ),
          )
        a.push(
          await ingestProcess(
            broker.bootstrap,
            c.topic,
            c.table,
            c.rows,
            join(dir, `ingest-${run}`),
            `bench-${run}`,
          ),
        )
        b.push(await ownParse(store, c.table, c.records, perBlock))
        // EBBFLOW_BENCH_INGEST_NO_ENGINE=1: without the Kafka engine route (the slowest here).
        if (process.env.EBBFLOW_BENCH_INGEST_NO_ENGINE !== '1')
          e.push(
            await kafkaEngine(store, broker.bootstrap, c.family, c.topic, c.table, c.rows, run),
          )
      }
      const ingester = figures(a, c.rows)
      const own = figures(b, c.rows)
      out[c.name] = {
        rows: c.rows,
        records: c.records.length,
        recordBytes: Math.round(
          c.records.reduce((n, r) => n + r.value!.length, 0) / c.records.length,
        ),
        rounds,
        codec: CODEC,
        recordsPerRequest: PER_REQUEST,
        ebbflowIngest: ingester,
        clickhouseOwnParse: own,
        kafkaEngine: e.length > 0 ? figures(e, c.rows) : 'skipped',
        ingestShareOfOwnParse: {
          wall: Number((ingester.rowsPerSecondWall / own.rowsPerSecondWall).toFixed(2)),
          perCpuSecond: Number((ingester.rowsPerCpuSecond / own.rowsPerCpuSecond).toFixed(2)),
        },
        ...(before.length > 0
          ? {
              ebbflowIngestBefore: figures(before, c.rows),
              beforeShareOfOwnParse: {
                perCpuSecond: Number(
                  (figures(before, c.rows).rowsPerCpuSecond / own.rowsPerCpuSecond).toFixed(2),
                ),
              },
            }
          : {}),
      }
    }
    await producer.disconnect()
    await admin.disconnect()
    return out
  } finally {
    await broker.stop()
  }
}
