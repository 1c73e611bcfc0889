// bench/api: the GraphQL API's main queries on generated data in chDB — p50/p99 latency per
// query and requests/s — at each size in EBBFLOW_BENCH_API_ROWS (default 10,000,000 and
// 100,000,000 exec rows; each exec has its exit row too, plus a tenth as many TCP rows and
// syscall-count rows). The data spans 7 days over 40 namespaces × 50 pods; the "pod-scoped
// one-hour" queries ask for one pod's last hour. Queries go through the whole API (GraphQL
// parsing, limits, the namespace scope of a `*` token, SQL, chDB) without a socket.
// Prints one JSON report and writes bench/reports/api.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApi } from '@ebbflow/api'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'

const SIZES = (process.env.EBBFLOW_BENCH_API_ROWS ?? '10000000,100000000').split(',').map(Number)
const ROUNDS = Number(process.env.EBBFLOW_BENCH_API_ROUNDS ?? 40)
const TOKEN = 'bench-token-0123456789'
const HOUR_NS = 3_600_000_000_000n

/** Fills the raw tables server-side (INSERT … SELECT from numbers()), one day-sized chunk at a time. */
async function generate(store: ChdbStore, execs: number, nowS: number): Promise<number> {
  const t0 = performance.now()
  const spanS = 7 * 86_400
  const chunk = 5_000_000
  for (let start = 0; start < execs; start += chunk) {
    const n = Math.min(chunk, execs - start)
    // Times spread evenly over the span: exec i at nowS - spanS + i * spanS / execs.
    const time = `toDateTime64(${nowS - spanS} + (number * ${spanS} / ${execs}), 9, 'UTC')`
    const pod = `concat('pod-', toString(number % 50))`
    const ns = `concat('ns-', toString(intDiv(number, 50) % 40))`
    await store.exec(`INSERT INTO ebbflow.process_events
      (time, kind, node, boot_id, namespace, pod, container, workload_kind, workload_name, pid, tgid, ppid, uid, comm, parent_comm, filename, args, exit_code, duration_ns)
      SELECT kt.2, kt.1, concat('node-', toString(number % 20)), 'boot', ${ns}, ${pod}, 'app', 'Deployment', concat('wl-', toString(number % 50)),
             toUInt32(number % 4000000), toUInt32(number % 4000000), 1, 1000, 'python3', 'bash', '/usr/bin/python3',
             if(kt.1 = 'exec', ['/usr/bin/python3', '-m', 'worker', toString(number)], []),
             if(kt.1 = 'exit', toInt32(number % 7 = 0), 0), if(kt.1 = 'exit', 1000000 + number % 1000, 0)
      FROM (SELECT number, ${time} AS t0 FROM numbers(${start}, ${n}))
      ARRAY JOIN [('exec', t0), ('exit', t0 + toIntervalMillisecond(3))] AS kt
      SETTINGS deduplicate_insert = 'disable'`)
    const m = Math.ceil(n / 10)
    const tcpTime = `toDateTime64(${nowS - spanS} + (number * ${spanS} / ${Math.ceil(execs / 10)}), 9, 'UTC')`
    await store.exec(`INSERT INTO ebbflow.tcp_connections
      (time, event, role, node, boot_id, namespace, pod, container, workload_kind, workload_name, sock_id, pid, comm, ip_family, saddr, daddr, sport, dport, duration_ns, bytes_sent, bytes_received)
      SELECT ${tcpTime}, 'close', 'active', concat('node-', toString(number % 20)), 'boot', ${ns}, ${pod}, 'app', 'Deployment', concat('wl-', toString(number % 50)),
             number, toUInt32(number % 4000000), 'python3', 4,
             toIPv6(IPv4NumToString(toUInt32(167772160 + number % 2000))), toIPv6(IPv4NumToString(toUInt32(167772160 + (number * 7) % 2000))),
             toUInt16(30000 + number % 30000), toUInt16(8080), 1000000, number % 100000, number % 50000
      FROM numbers(${Math.floor(start / 10)}, ${m})
      SETTINGS deduplicate_insert = 'disable'`)
    await store.exec(`INSERT INTO ebbflow.syscall_counts
      (time, interval_ns, node, boot_id, namespace, pod, container, workload_kind, workload_name, cgroup_id, syscall_nr, syscall, count)
      SELECT ${tcpTime}, 1000000000, concat('node-', toString(number % 20)), 'boot', ${ns}, ${pod}, 'app', 'Deployment', concat('wl-', toString(number % 50)),
             number % 2000, toUInt16(number % 300), concat('sys_', toString(number % 300)), 1 + number % 1000
      FROM numbers(${Math.floor(start / 10)}, ${m})
      SETTINGS deduplicate_insert = 'disable'`)
  }
  await store.exec('OPTIMIZE TABLE ebbflow.process_events FINAL')
  return (performance.now() - t0) / 1000
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-api-'))
const results: Record<string, unknown> = {}
try {
  for (const size of SIZES) {
    const store = await ChdbStore.open(join(dir, String(size)))
    await migrate(store, { retentionDays: 365 })
    const nowS = Math.floor(Date.now() / 1000)
    const generateSeconds = await generate(store, size, nowS)
    const [rows] = await store.query<{ n: string }>(
      'SELECT count() AS n FROM ebbflow.process_events',
    )
    const api = createApi({
      store,
      tokens: { [TOKEN]: ['*'] },
      logger: createLogger('bench', 'silent'),
    })
    const now = new Date(nowS * 1000)
    const hourAgo = new Date(Number(BigInt(nowS) * 1_000_000_000n - HOUR_NS) / 1e6).toISOString()
    const dayAgo = new Date(nowS * 1000 - 86_400_000).toISOString()
    const queries: Record<string, { query: string; variables: Record<string, unknown> }> = {
      'execEvents, one pod, last hour, first 100': {
        query: `query($f: EventFilter!) { execEvents(filter: $f, first: 100) { edges { node { time comm args exitCode durationNs } } pageInfo { hasNextPage endCursor } } }`,
        variables: { f: { namespace: 'ns-3', pod: 'pod-7', from: hourAgo, to: now.toISOString() } },
      },
      'connections, one pod, last hour, first 100': {
        query: `query($f: EventFilter!) { connections(filter: $f, first: 100) { edges { node { time destinationAddress destinationPort bytesSent } } } }`,
        variables: { f: { namespace: 'ns-3', pod: 'pod-7', from: hourAgo } },
      },
      'syscallCounts, one namespace, last hour': {
        query: `query($f: EventFilter!) { syscallCounts(filter: $f, first: 50) { syscall count } }`,
        variables: { f: { namespace: 'ns-3', from: hourAgo } },
      },
      'execEvents, one namespace, last day, first 100': {
        query: `query($f: EventFilter!) { execEvents(filter: $f, first: 100) { edges { node { time comm exitCode } } } }`,
        variables: { f: { namespace: 'ns-5', from: dayAgo } },
      },
    }
    const perQuery: Record<string, unknown> = {}
    for (const [name, q] of Object.entries(queries)) {
      const run = async () => {
        const res = await api.fetch('http://localhost/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify(q),
        })
        const body = (await res.json()) as { errors?: unknown }
        if (body.errors) throw new Error(`${name}: ${JSON.stringify(body.errors)}`)
        return body
      }
      await run() // warm
      const times: number[] = []
      const t0 = performance.now()
      for (let i = 0; i < ROUNDS; i++) {
        const s = performance.now()
        await run()
        times.push(performance.now() - s)
      }
      const total = (performance.now() - t0) / 1000
      times.sort((a, b) => a - b)
      perQuery[name] = {
        p50Ms: Math.round(quantile(times, 0.5) * 10) / 10,
        p99Ms: Math.round(quantile(times, 0.99) * 10) / 10,
        requestsPerSecond: Math.round((ROUNDS / total) * 10) / 10,
      }
    }
    results[String(size)] = {
      execRows: size,
      processEventsRows: Number(rows!.n),
      generateSeconds,
      queries: perQuery,
    }
    await store.close()
    rmSync(join(dir, String(size)), { recursive: true, force: true })
  }
  const report = {
    bench: 'api',
    machine: { cpus: cpus().length, model: cpus()[0]?.model },
    rounds: ROUNDS,
    sizes: results,
    target: { podScopedOneHourP99Ms: 200, atRows: 100_000_000 },
  }
  const text = JSON.stringify(report, null, 2)
  process.stdout.write(`${text}\n`)
  mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
  writeFileSync(join(import.meta.dirname, '../reports/api.json'), text)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
