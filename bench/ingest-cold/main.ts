// bench/ingest-cold: the serverless ingester's cold start, from process start to the first
// stored row of the first invocation, beside a bare `node -e ''` start in the same run.
//
// Each function run is a fresh Node process that imports the packaged Lambda bundle
// (npm run package:functions: ingest/index.mjs), whose top level opens the store and checks its
// schema version — either a running ClickHouse server (EBBFLOW_CLICKHOUSE; the realistic store,
// here clickhouse-front.ts), or chDB in a folder that `migrate` prepared (EBBFLOW_DATA_DIR) —; the process then calls handler() with one MSK event of one
// EventBatch (EXECS exec events) and prints once handler() resolved, i.e. once the rows are
// stored. The time is the parent's wall clock from spawn() to that line. The two kinds of run
// alternate (node, function, node, function…) so that load on the shared machine falls on both;
// medians are reported.
//
// Prints one JSON report and writes bench/reports/ingest-cold.json.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { startClickHouseFront } from './clickhouse-front.ts'

const ROOT = join(import.meta.dirname, '../..')
const RUNS = Number(process.env.EBBFLOW_BENCH_COLD_RUNS ?? 11)
const EXECS = 100
const TARGET_MS = 500

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Runs `args` with node; resolves with the ms from spawn() to its first stdout line (or exit). */
function timed(
  args: string[],
  env: NodeJS.ProcessEnv,
  untilLine: boolean,
): Promise<{ ms: number; line: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let done = false
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      if (untilLine && !done && out.includes('\n')) {
        done = true
        resolve({ ms: performance.now() - t0, line: out.split('\n')[0]! })
      }
    })
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`exit ${code}: ${err}`))
      else if (!done) resolve({ ms: performance.now() - t0, line: out })
    })
  })
}

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-cold-'))
try {
  const dist = join(dir, 'dist')
  const packaged = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts/package-functions.ts'), '--out', dist],
    { encoding: 'utf8' },
  )
  if (packaged.status !== 0) throw new Error(`packaging failed: ${packaged.stderr}`)
  const fnDir = join(dist, 'ingest')
  mkdirSync(join(fnDir, 'node_modules'))
  symlinkSync(join(ROOT, 'node_modules/chdb'), join(fnDir, 'node_modules/chdb'))

  const template = join(dir, 'template')
  const store = await ChdbStore.open(template)
  await migrate(store)
  await store.close()

  const t0 = BigInt(Date.now() - 60_000) * 1_000_000n
  const at = (i: number) => Long.fromString((t0 + BigInt(i)).toString(), true)
  const batch = v1.EventBatch.encode({
    node: 'bench-cold',
    bootId: 'boot-cold',
    batchId: 'cold-1',
    firstTimeNs: at(0),
    lastTimeNs: at(EXECS - 1),
    exec: Array.from({ length: EXECS }, (_, i) => ({
      timeNs: at(i),
      task: { pid: 100 + i, tgid: 100 + i, comm: 'cold' },
      filename: '/bin/cold',
      args: ['cold', String(i)],
    })),
  }).finish()
  const eventFile = join(dir, 'event.json')
  writeFileSync(
    eventFile,
    JSON.stringify({
      eventSource: 'aws:kafka',
      records: {
        'ebbflow.exec.v1-0': [
          {
            topic: 'ebbflow.exec.v1',
            partition: 0,
            offset: 0,
            value: Buffer.from(batch).toString('base64'),
          },
        ],
      },
    }),
  )
  // What the function's process runs: the platform's part (read the event, call the handler)
  // kept as small as a runtime client's.
  const harness = `
const { readFileSync } = await import('node:fs')
const event = JSON.parse(readFileSync(process.env.BENCH_EVENT, 'utf8'))
for (const list of Object.values(event.records)) for (const r of list) r.offset = Number(process.env.BENCH_OFFSET)
const m = await import(process.env.BENCH_BUNDLE)
const r = await m.handler(event)
const cpu = process.cpuUsage()
process.stdout.write(JSON.stringify({ uptimeMs: process.uptime() * 1000, cpuMs: (cpu.user + cpu.system) / 1000, ...r }) + '\\n')
await m.closeFunction()
`
  // The store a deployed function has: a ClickHouse server, running before the function starts.
  const serverDir = join(dir, 'server')
  cpSync(template, serverDir, { recursive: true })
  const front = await startClickHouseFront(serverDir)
  const server: number[] = []
  const serverCpu: number[] = []
  const bare: number[] = []
  const fn: number[] = []
  const childUptime: number[] = []
  const bareCpu: number[] = []
  const fnCpu: number[] = []
  let rows = 0
  for (let i = 0; i < RUNS; i++) {
    const b = await timed(
      ['-e', 'const c = process.cpuUsage(); console.log((c.user + c.system) / 1000)'],
      {},
      true,
    )
    bare.push(b.ms)
    bareCpu.push(Number(b.line))
    const dataDir = join(dir, `data-${i}`)
    cpSync(template, dataDir, { recursive: true })
    const r = await timed(
      ['--input-type=module', '-e', harness],
      {
        PATH: process.env.PATH,
        EBBFLOW_DATA_DIR: dataDir,
        EBBFLOW_LOG_LEVEL: 'warn',
        BENCH_EVENT: eventFile,
        BENCH_OFFSET: String(i),
        BENCH_BUNDLE: join(fnDir, 'index.mjs'),
      },
      true,
    )
    const viaServer = await timed(
      ['--input-type=module', '-e', harness],
      {
        PATH: process.env.PATH,
        EBBFLOW_CLICKHOUSE: front.url,
        EBBFLOW_LOG_LEVEL: 'warn',
        BENCH_EVENT: eventFile,
        BENCH_OFFSET: String(i),
        BENCH_BUNDLE: join(fnDir, 'index.mjs'),
      },
      true,
    )
    const sr = JSON.parse(viaServer.line) as { cpuMs: number; stored: number }
    if (sr.stored !== 1) throw new Error(`the record was not stored: ${viaServer.line}`)
    server.push(viaServer.ms)
    serverCpu.push(sr.cpuMs)
    const result = JSON.parse(r.line) as {
      uptimeMs: number
      cpuMs: number
      stored: number
      rows: number
    }
    if (result.stored !== 1) throw new Error(`the record was not stored: ${r.line}`)
    rows = result.rows
    fn.push(r.ms)
    childUptime.push(result.uptimeMs)
    fnCpu.push(result.cpuMs)
    rmSync(dataDir, { recursive: true, force: true })
  }
  const [stored] = await (async () => {
    await front.close()
    const check = await ChdbStore.open(serverDir)
    try {
      return await check.query<{ n: string }>(
        "SELECT count() AS n FROM ebbflow.process_events WHERE node = 'bench-cold'",
      )
    } finally {
      await check.close()
    }
  })()
  if (Number(stored!.n) !== RUNS * EXECS)
    throw new Error(`the server store has ${stored!.n} exec rows, not ${RUNS * EXECS}`)
  const report = {
    bench: 'ingest-cold',
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg1m: loadavg()[0] },
    method:
      'fresh node process per run: import the Lambda bundle (its top level opens the store and checks the schema version), handler(one MSK event), print; parent wall clock from spawn to the line; rounds of node -e "", the function with chDB in a migrated folder, the function on a running ClickHouse server',
    runs: RUNS,
    rowsPerInvocation: rows,
    bareNodeMedianMs: Math.round(median(bare)),
    // EBBFLOW_CLICKHOUSE: the realistic store, a running ClickHouse server (here its HTTP
    // interface over chDB in the bench process, see clickhouse-front.ts).
    clickhouseServer: {
      coldStartToFirstRowMedianMs: Math.round(median(server)),
      coldStartCpuMedianMs: Math.round(median(serverCpu)),
      coldStartMs: server.map(Math.round),
    },
    // EBBFLOW_DATA_DIR: chDB inside the function, opened by the cold start (ClickHouse's own
    // start-up, about 250-300 ms of CPU, is part of it).
    coldStartToFirstRowMedianMs: Math.round(median(fn)),
    coldStartChildUptimeMedianMs: Math.round(median(childUptime)),
    overBareNodeMedianMs: Math.round(median(fn.map((x, i) => x - bare[i]!))),
    // CPU time (user + system, every thread of the process) until the same points: less
    // sensitive than wall time to other work on a shared machine.
    bareNodeCpuMedianMs: Math.round(median(bareCpu)),
    coldStartCpuMedianMs: Math.round(median(fnCpu)),
    bareNodeMs: bare.map(Math.round),
    coldStartMs: fn.map(Math.round),
    targets: { coldStartToFirstRowMedianMs: TARGET_MS },
    met: { clickhouseServer: median(server) <= TARGET_MS, chdb: median(fn) <= TARGET_MS },
  }
  const text = JSON.stringify(report, null, 2)
  process.stdout.write(`${text}\n`)
  mkdirSync(join(ROOT, 'bench/reports'), { recursive: true })
  writeFileSync(join(ROOT, 'bench/reports/ingest-cold.json'), `${text}\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
