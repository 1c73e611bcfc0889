// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Grafana's ${variable} syntax, not JavaScript's
// The Grafana dashboards without Grafana: the committed JSON is what infra/grafana/dashboards.ts
// generates, it is well-formed for Grafana and the ClickHouse plugin, and every panel's SQL —
// expanded as the plugin expands it (tests/support/grafana.ts) — runs through the embedded
// store's /clickhouse interface with clickhouse-go (the plugin's driver), returns the columns its
// panel type needs, and rows where the data gives them: once on the API's fixture (namespaces,
// pods, sessions, functions), once on a real capture by `ebbflow up` (root only).
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'
import type { Dashboard, Panel, VariableModel } from '@grafana/schema'
import { parse } from 'yaml'
import {
  configMapYaml,
  DASHBOARDS,
  DATASOURCE_UID,
  dashboardJson,
  OUTPUT,
  PLUGIN,
  SCHEMA_VERSION,
} from '../../infra/grafana/dashboards.ts'
import { createApi } from '../../services/api/src/app.ts'
import { CLICKHOUSE_HTTP_PATH } from '../../services/api/src/clickhouse-http.ts'
import { type ApiServer, startApiServer } from '../../services/api/src/server.ts'
import { fill } from '../../services/api/test/fixture.ts'
import { isRoot } from '../support/capture.ts'
import { createCgroup, type TestCgroup } from '../support/cgroup.ts'
import { type ChConnection, type ChResult, chquery } from '../support/chquery.ts'
import { expandPanelSql, type MacroContext, type VariableValue } from '../support/grafana.ts'
import { freePort } from '../support/kafka-broker.ts'

const root = join(import.meta.dirname, '../..')

interface Query {
  /** dashboard file / panel title / refId, or dashboard file / variable name. */
  id: string
  file: string
  panel?: Panel
  refId?: string
  format?: number
  rawSql: string
}

/** Every target of every panel, and every query variable, of every dashboard. */
function queriesOf(): Query[] {
  const out: Query[] = []
  for (const [file, d] of Object.entries(DASHBOARDS)) {
    for (const v of d.templating?.list ?? [])
      if (v.type === 'query') out.push({ id: `${file} / $${v.name}`, file, rawSql: variableSql(v) })
    for (const p of (d.panels ?? []) as Panel[])
      for (const t of (p.targets ?? []) as { refId: string; rawSql: string; format: number }[])
        out.push({
          id: `${file} / ${p.title} / ${t.refId}`,
          file,
          panel: p,
          refId: t.refId,
          format: t.format,
          rawSql: t.rawSql,
        })
  }
  return out
}

function variableSql(v: VariableModel): string {
  return (v.query as unknown as { rawSql: string }).rawSql
}

async function runAll(
  conn: ChConnection,
  vars: Record<string, VariableValue>,
  ctx: MacroContext,
): Promise<Map<string, { q: Query; r: ChResult }>> {
  const qs = queriesOf()
  const results = await chquery(
    conn,
    qs.map((q) => ({ id: q.id, sql: expandPanelSql({ rawSql: q.rawSql, vars, ctx }) })),
  )
  assert.equal(results.length, qs.length)
  return new Map(qs.map((q, i) => [q.id, { q, r: results[i]! }]))
}

const NUMERIC = /^(U?Int\d+|Float\d+|Decimal)/

/** The columns each panel type reads, checked on one result. */
function checkShape(q: Query, r: ChResult): void {
  assert.equal(r.error, undefined, `${q.id}: ${r.error}\n${q.rawSql}`)
  // An empty result has no header block in Native (chDB, like a ClickHouse server, sends an
  // empty body): nothing to check but that it ran. The runs on All check every shape.
  if (r.rows.length === 0 && r.columns.length === 0) return
  const names = r.columns.map((c) => c.name)
  if (!q.panel) {
    assert.equal(r.columns.length, 1, `${q.id}: a variable query returns one column`)
    return
  }
  if (q.panel.type === 'timeseries') {
    assert.equal(q.format, 0, `${q.id}: time series format`)
    assert.match(r.columns[0]!.type, /^DateTime/, `${q.id}: the first column is the time`)
    assert.ok(
      r.columns.some((c) => NUMERIC.test(c.type)),
      `${q.id}: a numeric value column in ${JSON.stringify(r.columns)}`,
    )
  } else if (q.panel.type === 'nodeGraph') {
    const need =
      q.refId === 'nodes' ? ['id', 'title', 'mainstat'] : ['id', 'source', 'target', 'mainstat']
    for (const n of need) assert.ok(names.includes(n), `${q.id}: column ${n} in ${names}`)
  } else {
    assert.equal(q.format, 1, `${q.id}: table format`)
    assert.ok(r.columns.length > 0)
  }
}

describe('dashboard files', { timeout: 30_000 }, () => {
  const files = readdirSync(OUTPUT.dir).filter((f) => f.endsWith('.json'))

  it('are what infra/grafana/dashboards.ts generates (npm run gen:dashboards)', () => {
    assert.deepEqual(files.sort(), Object.keys(DASHBOARDS).sort())
    for (const [file, d] of Object.entries(DASHBOARDS))
      assert.equal(readFileSync(join(OUTPUT.dir, file), 'utf8'), dashboardJson(d), file)
    assert.equal(readFileSync(OUTPUT.configMap, 'utf8'), configMapYaml())
  })

  it('parse, have unique ids and uids, current schema, SQL targets and only the provisioned datasource', () => {
    const provisioning = parse(
      readFileSync(join(root, 'infra/grafana/provisioning/datasources/clickhouse.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string }[] }
    assert.ok(provisioning.datasources.some((s) => s.uid === DATASOURCE_UID && s.type === PLUGIN))
    const uids = new Set<string>()
    for (const file of files) {
      const d = JSON.parse(readFileSync(join(OUTPUT.dir, file), 'utf8')) as Dashboard
      assert.ok(d.uid && !uids.has(d.uid), `${file}: unique uid`)
      uids.add(d.uid)
      assert.equal(d.schemaVersion, SCHEMA_VERSION)
      const panels = (d.panels ?? []) as Panel[]
      assert.ok(panels.length > 0)
      const ids = panels.map((p) => p.id)
      assert.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`)
      // Every datasource reference: the variable, whose default is the provisioned uid.
      const refs: { type: string; uid: string }[] = []
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) for (const x of node) walk(x)
        else if (node && typeof node === 'object')
          for (const [k, v] of Object.entries(node)) {
            if (k === 'datasource' && v && typeof v === 'object')
              refs.push(v as { type: string; uid: string })
            walk(v)
          }
      }
      walk(d)
      assert.ok(refs.length > 0)
      for (const ref of refs) {
        assert.equal(ref.type, PLUGIN)
        assert.ok(['${datasource}', DATASOURCE_UID].includes(ref.uid), `${file}: ${ref.uid}`)
      }
      const vars = d.templating?.list ?? []
      const dsVar = vars.find((v) => v.name === 'datasource')!
      assert.equal(dsVar.type, 'datasource')
      assert.equal(dsVar.query, PLUGIN)
      assert.equal((dsVar.current as { value: string }).value, DATASOURCE_UID)
      for (const name of ['namespace', 'workload', 'pod', 'function']) {
        const v = vars.find((x) => x.name === name)
        assert.ok(v, `${file}: variable ${name}`)
        assert.equal(v.multi, true)
        assert.equal(v.includeAll, true)
      }
      for (const p of panels)
        for (const t of (p.targets ?? []) as Record<string, unknown>[]) {
          assert.equal(t.editorType, 'sql')
          assert.equal(typeof t.rawSql, 'string')
          assert.ok(t.format === 0 || t.format === 1, `${file} ${p.title}: format`)
        }
    }
    // The datasource for `ebbflow up`: the same uid, read over the /clickhouse interface.
    const embedded = parse(
      readFileSync(join(root, 'infra/grafana/embedded/datasources/ebbflow-up.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string; jsonData: Record<string, unknown> }[] }
    assert.equal(embedded.datasources.length, 1)
    const up = embedded.datasources[0]!
    assert.equal(up.uid, DATASOURCE_UID)
    assert.equal(up.type, PLUGIN)
    assert.equal(up.jsonData.protocol, 'http')
    assert.equal(up.jsonData.path, CLICKHOUSE_HTTP_PATH)
    assert.equal(up.jsonData.port, 4000)
    const configMap = parse(readFileSync(OUTPUT.configMap, 'utf8')) as {
      data: Record<string, string>
    }
    assert.deepEqual(Object.keys(configMap.data).sort(), files.sort())
  })
})

const ALL = {
  namespace: '$__all',
  workload: '$__all',
  pod: '$__all',
  function: '$__all',
  session: '',
}

describe('every panel on the API fixture (pods, sessions, functions)', { timeout: 180_000 }, () => {
  let dir: string
  let store: ChdbStore
  let server: ApiServer
  let conn: ChConnection
  const ctx = (): MacroContext => ({
    from: new Date(Date.now() - 3 * 3600_000),
    to: new Date(Date.now() + 60_000),
    intervalMs: 60_000,
  })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-grafana-'))
    store = await ChdbStore.open(dir)
    await migrate(store)
    await fill(store)
    const api = createApi({ store, tokens: {}, open: true, logger: createLogger('t', 'silent') })
    server = await startApiServer({ api, port: 0, host: '127.0.0.1' })
    conn = { addr: new URL(server.url).host, path: '/clickhouse' }
  })
  after(async () => {
    await server?.close()
    await store?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('with every variable on All: each query runs, has its columns and rows', async () => {
    const results = await runAll(conn, ALL, ctx())
    // The fixture has no session chosen in the Session box.
    const empty = new Set(['exec-audit.json / Commands of session $session / A'])
    for (const { q, r } of results.values()) {
      checkShape(q, r)
      if (!empty.has(q.id)) assert.ok(r.rows.length > 0, `${q.id}: no rows\n${q.rawSql}`)
    }
  })

  it('with a namespace picked, tables show that namespace only; a session shows its commands', async () => {
    const [picked] = await store.query<{ session: string; n: string }>(
      "SELECT session, count() AS n FROM ebbflow.process_events WHERE namespace = 'shop' AND session != '' AND kind = 'exec' GROUP BY session ORDER BY session LIMIT 1",
    )
    assert.ok(picked, 'the fixture has a session in shop')
    const results = await runAll(
      conn,
      { ...ALL, namespace: ['shop'], session: picked.session },
      ctx(),
    )
    for (const { q, r } of results.values()) {
      checkShape(q, r)
      const ns = r.columns.findIndex((c) => c.name === 'namespace')
      if (ns >= 0 && q.panel)
        for (const row of r.rows) assert.equal(row[ns], 'shop', `${q.id}: ${JSON.stringify(row)}`)
    }
    const commands = results.get('exec-audit.json / Commands of session $session / A')!.r
    assert.equal(String(commands.rows.length), picked.n)
    const sessions = results.get('exec-audit.json / Exec sessions / A')!.r
    const col = sessions.columns.findIndex((c) => c.name === 'session')
    assert.ok(sessions.rows.some((row) => row[col] === picked.session))
  })
})

describe('every panel on a real capture (ebbflow up)', {
  skip: isRoot() ? false : 'needs root (ebbflow up loads BPF programs)',
  timeout: 240_000,
}, () => {
  let tmp: string
  let cg: TestCgroup
  let echo: Server
  let echoPort: number
  let child: ChildProcess | undefined
  let stderr = ''

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-grafana-up-'))
    cg = createCgroup('grafana')
    echo = createServer((s) => s.pipe(s))
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    echoPort = (echo.address() as { port: number }).port
  })
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    echo?.close()
    await cg?.remove()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('the workload the test ran shows on the dashboards', async () => {
    const port = await freePort()
    const started = new Date(Date.now() - 60_000)
    child = spawn(
      join(root, 'bin/ebbflow'),
      ['up', '--data-dir', join(tmp, 'data'), '--port', String(port)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, EBBFLOW_COUNTER_INTERVAL_MS: '500', EBBFLOW_LOG_LEVEL: 'info' },
      },
    )
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const deadline = Date.now() + 60_000
    while (!/ebbflow is up/.test(stderr)) {
      if (child.exitCode !== null) throw new Error(`ebbflow up exited: ${stderr}`)
      if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${stderr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const conn: ChConnection = { addr: `127.0.0.1:${port}`, path: '/clickhouse' }

    const marker = `grafana-${randomUUID().slice(0, 8)}`
    const tcp = await cg.run([
      '/bin/bash',
      '-c',
      `exec 3<>/dev/tcp/127.0.0.1/${echoPort}; printf hello >&3; read -r -n 5 reply <&3; exec 3>&-; echo "reply=$reply"`,
      marker,
    ])
    assert.equal(tcp.stdout.trim(), 'reply=hello', `${tcp.code} ${tcp.stderr}`)
    const dd = await cg.run([
      '/bin/sh',
      '-c',
      'dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null',
      marker,
    ])
    assert.equal(dd.code, 0)

    // Wait (with a deadline) until the TCP exchange and the execs are stored, and the first
    // ingest lag rows: `up` writes those for its stored blocks once a second (bookkeepingMs), so
    // a capture stored within the first second has none yet.
    const ready = `SELECT
      (SELECT count() FROM ebbflow.process_events WHERE has(args, '${marker}')) AS execs,
      (SELECT count() FROM ebbflow.tcp_connections WHERE dport = ${echoPort} AND event = 'close') AS closes,
      (SELECT count() FROM ebbflow.traffic_1m WHERE remote_port = ${echoPort}) AS traffic,
      (SELECT count() FROM ebbflow.syscalls_1m) AS syscalls,
      (SELECT count() FROM ebbflow.collector_stats WHERE metric = 'ingest_lag_ms') AS lag`
    const until = Date.now() + 30_000
    for (;;) {
      const [r] = await chquery(conn, [{ id: 'ready', sql: ready }])
      const row = r!.rows[0] as string[] | undefined
      if (r!.error === undefined && row && row.every((v) => Number(v) > 0)) break
      if (Date.now() > until)
        throw new Error(`capture not stored in time: ${JSON.stringify(r)} ${stderr.slice(-2000)}`)
      await new Promise((res) => setTimeout(res, 500))
    }

    const results = await runAll(conn, ALL, {
      from: started,
      to: new Date(Date.now() + 60_000),
      intervalMs: 10_000,
    })
    // What one host without Kubernetes gives: no sessions, no functions, no containers.
    const noRowsHere = (id: string) =>
      id.startsWith('exec-audit.json') ||
      id.startsWith('functions.json') ||
      // The file family is not among `up`'s default families.
      id.startsWith('files.json') ||
      id.endsWith('/ $function') ||
      id === 'cluster-overview.json / Collector drops per node / A'
    const missing: string[] = []
    for (const { q, r } of results.values()) {
      checkShape(q, r)
      if (!noRowsHere(q.id) && r.rows.length === 0) missing.push(q.id)
    }
    assert.deepEqual(missing, [], 'panels without rows')

    // The test's own exchange: a traffic row to its echo port, an edge from its bash.
    const peers = results.get('pod-network.json / Traffic by peer and port / A')!.r
    const col = (name: string) => peers.columns.findIndex((c) => c.name === name)
    assert.ok(
      peers.rows.some(
        (row) =>
          Number(row[col('remote_port')]) === echoPort &&
          row[col('direction')] === 'egress' &&
          Number(row[col('bytes')]) >= 5,
      ),
      JSON.stringify(peers.rows.slice(0, 20)),
    )
    const edges = results.get('pod-network.json / Service map / edges')!.r
    const source = edges.columns.findIndex((c) => c.name === 'source')
    const target = edges.columns.findIndex((c) => c.name === 'target')
    assert.ok(
      edges.rows.some((row) => row[source] === 'bash' && String(row[target]) !== ''),
      JSON.stringify(edges.rows.slice(0, 20)),
    )
  })
})
