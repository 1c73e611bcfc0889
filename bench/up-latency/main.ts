// bench/up-latency: kernel event → queryable row in `ebbflow up`, run as a user runs it (the
// CLI as a child process, embedded store, its own data folder and port).
//
// A paced workload in its own cgroup (perl) makes EBBFLOW_BENCH_RATE getpgid(own pid) calls a
// second (default 50,000; `up` is told to capture getpgid as a security syscall, so each is one
// syscall_events row) for EBBFLOW_BENCH_SECONDS (default 60). Every EBBFLOW_BENCH_MARKER_MS
// (default 100) it calls getpgid(MARKER_BASE + k) instead and prints k with its own wall clock
// just before the call. getpgid and not getppid: `up` captures the whole machine, and on a
// shared machine other users' benches storm getppid. The
// bench polls `up`'s ClickHouse HTTP interface (/clickhouse on the API's port, the path Grafana
// takes) for the getpgid rows of that cgroup and notes when each marker k first shows: the
// latency of marker k is that moment (the poll's answer arriving) minus the workload's stamp.
// Both clocks are this machine's wall clock; nothing comes from `up`'s own figures but the
// kernel drops of its status lines and its CPU time (/proc/<pid>/stat).
//
// Reports p50/p99/max overall and per 10 s window of stamps, markers never seen (a bound of
// EBBFLOW_BENCH_DRAIN_S after the load, default 60), the kernel drops, and `up`'s CPU seconds
// during the load and until the last marker showed, with the blocks `up` stored meanwhile and
// their mean insert time (its /metrics). Prints one JSON report and writes it to
// bench/reports/up-latency.json (EBBFLOW_BENCH_REPORT names another file).
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createCgroup } from '../../tests/support/cgroup.ts'
import { freePort } from '../../tests/support/kafka-broker.ts'

const RATE = Number(process.env.EBBFLOW_BENCH_RATE ?? 50_000)
const SECONDS = Number(process.env.EBBFLOW_BENCH_SECONDS ?? 60)
const MARKER_MS = Number(process.env.EBBFLOW_BENCH_MARKER_MS ?? 100)
const DRAIN_S = Number(process.env.EBBFLOW_BENCH_DRAIN_S ?? 60)
const POLL_MS = 100
const WINDOW_S = 10
/** Above PID_MAX_LIMIT: getpgid fails with ESRCH at once, and no real process has the id. */
const MARKER_BASE = 1_000_000_000
const bin = join(import.meta.dirname, '../../bin/ebbflow')

/** CPU seconds of a process so far (utime + stime; clock ticks of 1/100 s). */
const processCpu = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
const round3 = (x: number) => Math.round(x * 1000) / 1000

interface Up {
  child: ChildProcess
  log: () => string
  base: string
  metrics: string
}

const STAGES = ['delivered', 'received', 'block', 'stored', 'done'] as const
type Buckets = Map<string, Map<number, number>> // stage → upper bound → cumulative count

/** `ebbflow_ingest_stage_age_seconds` of `up`'s /metrics: cumulative bucket counts by stage. */
async function scrapeStages(url: string): Promise<Buckets> {
  const text = await (await fetch(url)).text()
  const out: Buckets = new Map()
  for (const m of text.matchAll(
    /^ebbflow_ingest_stage_age_seconds_bucket\{le="([^"]+)",stage="([^"]+)"\} (\d+)/gm,
  )) {
    const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1])
    const stage = out.get(m[2]!) ?? new Map<number, number>()
    out.set(m[2]!, stage.set(le, Number(m[3])))
  }
  return out
}

/** Blocks inserted so far and their insert seconds (`ebbflow_ingest_insert_duration_seconds`). */
async function scrapeInserts(url: string): Promise<{ blocks: number; seconds: number }> {
  const text = await (await fetch(url)).text()
  const value = (name: string) =>
    Number(
      new RegExp(`^ebbflow_ingest_insert_duration_seconds_${name} (\\S+)`, 'm').exec(text)?.[1] ??
        0,
    )
  return { blocks: value('count'), seconds: value('sum') }
}

/**
 * p50/p99 of each stage between two scrapes, interpolated inside a bucket as Prometheus'
 * histogram_quantile does: the stage metrics' buckets bound the figures, not the bench.
 */
function stageQuantiles(before: Buckets, after: Buckets) {
  const out: Record<string, { records: number; p50S: number; p99S: number }> = {}
  for (const stage of STAGES) {
    const a = after.get(stage)
    if (!a) continue
    const b = before.get(stage)
    const les = [...a.keys()].sort((x, y) => x - y)
    const counts = les.map((le) => a.get(le)! - (b?.get(le) ?? 0))
    const total = counts.at(-1) ?? 0
    const q = (p: number) => {
      const rank = p * total
      const i = counts.findIndex((c) => c >= rank)
      if (i < 0 || total === 0) return Number.NaN
      const hi = les[i]!
      if (!Number.isFinite(hi)) return les[i - 1] ?? Number.NaN
      const lo = i === 0 ? 0 : les[i - 1]!
      const below = i === 0 ? 0 : counts[i - 1]!
      return round3(lo + ((hi - lo) * (rank - below)) / Math.max(1, counts[i]! - below))
    }
    out[stage] = { records: total, p50S: q(0.5), p99S: q(0.99) }
  }
  return out
}

async function startUp(dataDir: string): Promise<Up> {
  const port = await freePort()
  const metricsPort = await freePort()
  const child = spawn(
    bin,
    [
      'up',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--families',
      'syscall',
      '--status',
      'true',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        EBBFLOW_SECURITY_SYSCALLS: 'getpgid',
        EBBFLOW_LOG_LEVEL: 'info',
        // The stage metrics (ebbflow_ingest_stage_age_seconds) on a port of the bench's own.
        EBBFLOW_METRICS_PORT: String(metricsPort),
        EBBFLOW_METRICS_HOST: '127.0.0.1',
        ...(process.env.EBBFLOW_BENCH_UP_ENV ? JSON.parse(process.env.EBBFLOW_BENCH_UP_ENV) : {}),
      },
    },
  )
  let log = ''
  for (const s of [child.stdout!, child.stderr!])
    s.setEncoding('utf8').on('data', (d: string) => {
      log += d
    })
  const deadline = Date.now() + 90_000
  while (!/ebbflow is up/.test(log)) {
    if (child.exitCode !== null) throw new Error(`ebbflow up exited ${child.exitCode}: ${log}`)
    if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${log}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    child,
    log: () => log,
    base: `http://127.0.0.1:${port}`,
    metrics: `http://127.0.0.1:${metricsPort}/metrics`,
  }
}

/**
 * The marker numbers of the cgroup's getpgid rows at or above `from`, through /clickhouse. The
 * time bound (5 s before the oldest unseen marker's stamp, on the sort key) keeps each poll to
 * a few seconds of rows: a poll shares the store with the ingester, and must not slow it.
 */
async function visibleMarkers(
  base: string,
  cgroupId: number,
  from: number,
  sinceMs: number,
): Promise<number[]> {
  const sql =
    `SELECT args[1] - ${MARKER_BASE} AS k FROM ebbflow.syscall_events ` +
    `WHERE time >= fromUnixTimestamp64Milli(${Math.floor(sinceMs) - 5000}) AND cgroup_id = ${cgroupId} ` +
    `AND syscall = 'getpgid' AND args[1] >= ${MARKER_BASE + from} FORMAT TSV`
  const res = await fetch(`${base}/clickhouse`, { method: 'POST', body: sql })
  const text = await res.text()
  if (!res.ok) throw new Error(`/clickhouse answered ${res.status}: ${text.slice(0, 300)}`)
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l))
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-up-'))
  const cg = createCgroup('bench-up-latency')
  const up = await startUp(dataDir)
  const upPid = up.child.pid!
  try {
    // Let `up` settle (migrations done, first counters stored) before the load starts.
    await new Promise((r) => setTimeout(r, 2000))
    const stamps = new Map<number, number>() // marker → workload's wall clock, ms
    const seen = new Map<number, number>() // marker → when the bench first saw its row, ms
    // The catch-up loop yields every 1,000 calls, so markers keep their 100 ms pace when the
    // workload cannot reach the rate (a starved machine): a marker late by its own loop would
    // not measure `up`.
    const producer = `use Time::HiRes qw(time sleep); $| = 1;
      my ($r, $d, $m, $b) = (${RATE}, ${SECONDS}, ${MARKER_MS / 1000}, ${MARKER_BASE});
      my $t0 = time; my ($n, $k) = (0, 0);
      while ((my $e = time - $t0) < $d) {
        my $target = $e * $r; while ($n < $target) { getpgrp($$); $n++; last if $n % 1000 == 0 }
        if ($e >= $k * $m) { my $now = time; getpgrp($b + $k); printf("m %d %.6f\\n", $k, $now); $k++ }
        sleep(0.0005)
      }
      print "n $n\\n";`
    const stagesBefore = await scrapeStages(up.metrics)
    const insertsBefore = await scrapeInserts(up.metrics)
    const cpu0 = processCpu(upPid)
    const started = Date.now()
    const workload = cg.start(['perl', '-e', producer])
    let produced = 0
    const lines = createInterface({ input: workload.stdout! })
    lines.on('line', (line) => {
      const [kind, a, b] = line.split(' ')
      if (kind === 'm') stamps.set(Number(a), Number(b) * 1000)
      else if (kind === 'n') produced = Number(a)
    })
    const workloadDone = new Promise<number | null>((resolve) => workload.on('close', resolve))
    let running = true
    let loadEndedAt = 0
    let cpuAtLoadEnd = 0
    void workloadDone.then(() => {
      running = false
      loadEndedAt = Date.now()
      cpuAtLoadEnd = processCpu(upPid)
    })
    let lowestUnseen = 0
    let polls = 0
    let pollErrors = 0
    for (;;) {
      try {
        const ks = await visibleMarkers(
          up.base,
          cg.id,
          lowestUnseen,
          stamps.get(lowestUnseen) ?? Date.now(),
        )
        const at = Date.now()
        polls++
        for (const k of ks) if (!seen.has(k)) seen.set(k, at)
        while (seen.has(lowestUnseen)) lowestUnseen++
      } catch (err) {
        pollErrors++
        if (pollErrors > 20) throw err
      }
      if (!running) {
        const all = [...stamps.keys()].every((k) => seen.has(k))
        if (all || Date.now() - loadEndedAt > DRAIN_S * 1000) break
      }
      await new Promise((r) => setTimeout(r, POLL_MS))
    }
    const code = await workloadDone
    if (code !== 0) throw new Error(`workload exited ${code}`)
    const lastSeenAt = Math.max(...seen.values())
    const cpuAtDrained = processCpu(upPid)
    const stages = stageQuantiles(stagesBefore, await scrapeStages(up.metrics))
    const insertsAfter = await scrapeInserts(up.metrics)
    const blocks = insertsAfter.blocks - insertsBefore.blocks
    const latencies: { k: number; at: number; s: number }[] = []
    for (const [k, stamp] of stamps) {
      const at = seen.get(k)
      if (at !== undefined) latencies.push({ k, at: stamp - started, s: (at - stamp) / 1000 })
    }
    const all = latencies.map((l) => l.s).sort((a, b) => a - b)
    const windows: { fromS: number; markers: number; p50S: number; p99S: number; maxS: number }[] =
      []
    for (let w = 0; w * WINDOW_S < SECONDS; w++) {
      const xs = latencies
        .filter((l) => l.at >= w * WINDOW_S * 1000 && l.at < (w + 1) * WINDOW_S * 1000)
        .map((l) => l.s)
        .sort((a, b) => a - b)
      windows.push({
        fromS: w * WINDOW_S,
        markers: xs.length,
        p50S: round3(quantile(xs, 0.5)),
        p99S: round3(quantile(xs, 0.99)),
        maxS: round3(xs.at(-1) ?? Number.NaN),
      })
    }
    const statuses = [...up.log().matchAll(/^\{.*"msg":"status".*\}$/gm)].map(
      (m) => JSON.parse(m[0]) as { drops: number; eventsPerSecond: number },
    )
    const loadSeconds = (loadEndedAt - started) / 1000
    const report = {
      targetEventsPerSecond: RATE,
      seconds: SECONDS,
      markerEveryMs: MARKER_MS,
      pollEveryMs: POLL_MS,
      machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) },
      upEnv: process.env.EBBFLOW_BENCH_UP_ENV ? JSON.parse(process.env.EBBFLOW_BENCH_UP_ENV) : {},
      produced,
      producedPerSecond: Math.round(produced / loadSeconds),
      markers: stamps.size,
      markersSeen: seen.size,
      markersNeverSeen: [...stamps.keys()].filter((k) => !seen.has(k)).length,
      p50S: round3(quantile(all, 0.5)),
      p99S: round3(quantile(all, 0.99)),
      maxS: round3(all.at(-1) ?? Number.NaN),
      windows,
      // Age of each record's oldest event at each hand-off inside `up` (its own stamps, from
      // the load's start to the drain): every record of the machine, not only the markers.
      stages,
      // Blocks the ingester stored from the load's start to the drain, and their mean insert
      // time: says whether the per-block cost is paid more often (smaller blocks) or costs more.
      blocks,
      insertSecondsPerBlock:
        blocks > 0 ? round3((insertsAfter.seconds - insertsBefore.seconds) / blocks) : null,
      kernelDrops: statuses.at(-1)?.drops ?? null,
      upCpuSecondsDuringLoad: round3(cpuAtLoadEnd - cpu0),
      upCpuPerLoadSecond: round3((cpuAtLoadEnd - cpu0) / loadSeconds),
      upCpuSecondsUntilDrained: round3(cpuAtDrained - cpu0),
      drainedAfterLoadS: round3((lastSeenAt - loadEndedAt) / 1000),
      polls,
      pollErrors,
    }
    const text = JSON.stringify(report, null, 2)
    process.stdout.write(`${text}\n`)
    const out =
      process.env.EBBFLOW_BENCH_REPORT ?? join(import.meta.dirname, '../reports/up-latency.json')
    mkdirSync(join(out, '..'), { recursive: true })
    writeFileSync(out, text)
  } finally {
    const exited = new Promise((r) => up.child.once('exit', r))
    up.child.kill('SIGTERM')
    const t = setTimeout(() => up.child.kill('SIGKILL'), 30_000)
    await exited
    clearTimeout(t)
    await cg.remove()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

await main()
