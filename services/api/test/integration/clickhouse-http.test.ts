// The embedded store's ClickHouse HTTP interface at /clickhouse, on a real socket, read by the
// drivers that use it: clickhouse-go v2 over HTTP (what Grafana's ClickHouse plugin runs, in
// tests/support/chquery) and @clickhouse/client. Every expected value is written by this test
// (literals) or read from chDB directly, never through the interface under test.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { ClickHouseLogLevel, createClient } from '@clickhouse/client'
import { createLogger } from '@ebbflow/common'
import { type ChConnection, chquery } from '../../../../tests/support/chquery.ts'
import { type ApiServer, startApiServer } from '../../src/server.ts'
import { type Harness, openHarness, TOKENS } from '../harness.ts'

let h: Harness
let closed: ApiServer
let open: ApiServer
let limited: ApiServer

before(async () => {
  h = await openHarness()
  const logger = createLogger('api-test', 'silent')
  closed = await startApiServer({ api: h.make({ logger }), port: 0, host: '127.0.0.1' })
  open = await startApiServer({ api: h.make({ logger, open: true }), port: 0, host: '127.0.0.1' })
  limited = await startApiServer({
    api: h.make({ logger, limits: { maxResultRows: 5 } }),
    port: 0,
    host: '127.0.0.1',
  })
})
after(async () => {
  await closed?.close()
  await open?.close()
  await limited?.close()
  await h?.close()
})

const base = (s: ApiServer) => new URL(s.url).origin
const conn = (s: ApiServer, password = TOKENS.admin): ChConnection => ({
  addr: new URL(s.url).host,
  path: '/clickhouse',
  password,
})

describe('ClickHouse HTTP interface (/clickhouse)', { timeout: 120_000 }, () => {
  it('clickhouse-go over HTTP (as Grafana configures it) connects and reads the store', async () => {
    const sql =
      'SELECT namespace, count() AS n FROM ebbflow.process_events GROUP BY namespace ORDER BY namespace'
    const direct = await h.store.query<{ namespace: string; n: string }>(sql)
    assert.ok(direct.length >= 2)
    const [r] = await chquery(conn(closed), [{ id: 'ns', sql }])
    assert.equal(r!.error, undefined)
    assert.deepEqual(r!.columns, [
      { name: 'namespace', type: 'LowCardinality(String)' },
      { name: 'n', type: 'UInt64' },
    ])
    assert.deepEqual(
      r!.rows,
      direct.map((d) => [d.namespace, d.n]),
    )
  })

  it('clickhouse-go decodes every column type the dashboards use, values as written', async () => {
    const sql = `SELECT toUInt64(18446744073709551615) AS u, 'it''s' AS s, [1, 2] AS arr,
      map('k', 'v') AS m, toDateTime64('2024-01-02 03:04:05.123456789', 9, 'UTC') AS t,
      toDateTime('2024-01-02 03:04:05', 'UTC') AS dt, CAST(NULL AS Nullable(String)) AS n,
      toLowCardinality('lc') AS lc, [toLowCardinality('a'), toLowCardinality('b')] AS lcs,
      toIPv6('::ffff:10.1.2.3') AS ip, CAST('b' AS Enum8('a' = 1, 'b' = 2)) AS e,
      tuple(7, 'x') AS tu, 1.5 AS f, toInt32(-3) AS i
      FROM numbers(3)`
    const [r] = await chquery(conn(closed), [{ id: 'types', sql }])
    assert.equal(r!.error, undefined)
    assert.equal(r!.rows.length, 3)
    assert.deepEqual(r!.rows[2], [
      '18446744073709551615',
      "it's",
      '[1 2]',
      'map[k:v]',
      '2024-01-02T03:04:05.123456789Z',
      '2024-01-02T03:04:05Z',
      null,
      'lc',
      '[a b]',
      '10.1.2.3',
      'b',
      '[7 x]',
      1.5,
      -3,
    ])
  })

  it('reads the events tables whole (Map and LowCardinality columns, many rows)', async () => {
    const [count] = await h.store.query<{ n: string }>(
      'SELECT count() AS n FROM ebbflow.process_events',
    )
    const [r] = await chquery(conn(closed), [
      { id: 'all', sql: 'SELECT * FROM ebbflow.process_events' },
    ])
    assert.equal(r!.error, undefined)
    assert.equal(String(r!.rows.length), count!.n)
    assert.ok(r!.columns.some((c) => c.name === 'labels' && c.type.startsWith('Map(')))
  })

  it('refuses writes, DDL, multi-statements and settings that lift read-only', async () => {
    const outfile = join(tmpdir(), `ebbflow-outfile-${process.pid}.csv`)
    const [before] = await h.store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.traffic')
    const results = await chquery(conn(closed), [
      { id: 'insert', sql: "INSERT INTO ebbflow.traffic (node) VALUES ('x')" },
      { id: 'drop', sql: 'DROP TABLE ebbflow.traffic' },
      { id: 'create', sql: 'CREATE TABLE ebbflow.x (a UInt8) ENGINE = Memory' },
      { id: 'multi', sql: 'SELECT 1; DROP TABLE ebbflow.traffic' },
      { id: 'settings', sql: 'SELECT 1 SETTINGS readonly = 0' },
      { id: 'limit', sql: 'SELECT 1 SETTINGS max_result_rows = 0' },
      { id: 'file', sql: "SELECT * FROM file('/etc/hostname', 'LineAsString')" },
      { id: 'outfile', sql: `SELECT 1 INTO OUTFILE '${outfile}' FORMAT CSV` },
      { id: 'outfile2', sql: `SELECT 1 into /* c */ outfile '${outfile}'` },
    ])
    const byId = Object.fromEntries(results.map((r) => [r.id, r.error ?? '']))
    assert.match(byId.insert!, /HTTP 403.*Code: 164.*readonly mode.*READONLY/)
    assert.match(byId.drop!, /HTTP 403.*Code: 164.*READONLY/)
    assert.match(byId.create!, /HTTP 403.*Code: 164.*READONLY/)
    assert.match(byId.multi!, /HTTP 400.*Code: 62.*Multi-statements are not allowed/)
    assert.match(byId.settings!, /Code: 164.*Cannot modify 'readonly' setting in readonly mode/)
    assert.match(byId.limit!, /Code: 164.*Cannot modify 'max_result_rows'/)
    assert.match(byId.file!, /Code: 164.*readonly mode/)
    assert.match(byId.outfile!, /HTTP 403.*Code: 344.*INTO OUTFILE is not allowed/)
    assert.match(byId.outfile2!, /Code: 344.*INTO OUTFILE is not allowed/)
    assert.equal(existsSync(outfile), false, 'no file written')
    const [after] = await h.store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.traffic')
    assert.equal(after!.n, before!.n)

    const lifted = await fetch(`${base(closed)}/clickhouse?max_execution_time=0&readonly=0`, {
      method: 'POST',
      headers: { 'X-ClickHouse-Key': TOKENS.admin },
      body: 'SELECT 1',
    })
    assert.equal(lifted.status, 403)
    assert.equal(lifted.headers.get('x-clickhouse-exception-code'), '164')
    const other = await fetch(`${base(closed)}/clickhouse?allow_ddl=1`, {
      method: 'POST',
      headers: { 'X-ClickHouse-Key': TOKENS.admin },
      body: 'SELECT 1',
    })
    assert.equal(other.status, 403)
    assert.match(await other.text(), /Cannot modify 'allow_ddl' setting in readonly mode/)
  })

  it("keeps the API's limits: more rows than allowed is an error, not a cut", async () => {
    const [r] = await chquery(conn(limited), [{ id: 'big', sql: 'SELECT number FROM numbers(10)' }])
    assert.match(r!.error!, /Code: 396.*TOO_MANY_ROWS_OR_BYTES/)
    const [ok] = await chquery(conn(limited), [{ id: 'ok', sql: 'SELECT number FROM numbers(5)' }])
    assert.deepEqual(ok!.rows, [['0'], ['1'], ['2'], ['3'], ['4']])
  })

  it('needs a token with every namespace, in any of the ways clients send one', async () => {
    const q = `${base(closed)}/clickhouse/?query=${encodeURIComponent('SELECT 42')}`
    const none = await fetch(q)
    assert.equal(none.status, 401)
    assert.match(await none.text(), /Code: 516.*AUTHENTICATION_FAILED/)
    const wrong = await fetch(q, { headers: { 'X-ClickHouse-Key': 'not-a-token-0123456789' } })
    assert.equal(wrong.status, 401)
    const narrow = await fetch(q, { headers: { 'X-ClickHouse-Key': TOKENS.shop } })
    assert.equal(narrow.status, 403)
    assert.match(await narrow.text(), /Code: 497.*every namespace.*ACCESS_DENIED/)

    const basic = `Basic ${Buffer.from(`grafana:${TOKENS.admin}`).toString('base64')}`
    const ways: Record<string, string>[] = [
      { Authorization: basic },
      { Authorization: `Bearer ${TOKENS.admin}` },
      { 'X-ClickHouse-User': 'default', 'X-ClickHouse-Key': TOKENS.admin },
    ]
    for (const headers of ways) {
      const res = await fetch(q, { headers })
      assert.equal(res.status, 200, JSON.stringify(headers))
      assert.equal(await res.text(), '42\n')
    }
    const inUrl = await fetch(`${q}&user=default&password=${TOKENS.admin}`)
    assert.equal(await inUrl.text(), '42\n')

    // An open API (a laptop's loopback) lets anyone in, as the GraphQL endpoint does.
    const anyone = await fetch(`${base(open)}/clickhouse/?query=SELECT%2042`)
    assert.equal(anyone.status, 200)
    assert.equal(await anyone.text(), '42\n')
    const [r] = await chquery(conn(open, ''), [{ id: 'open', sql: 'SELECT 42 AS x' }])
    assert.deepEqual(r!.rows, [[42]])
  })

  it('answers ping, formats, query parameters, a database and compression as ClickHouse does', async () => {
    const auth = { 'X-ClickHouse-Key': TOKENS.admin }
    for (const path of ['/clickhouse/ping', '/clickhouse', '/clickhouse/']) {
      const res = await fetch(`${base(closed)}${path}`)
      assert.equal(res.status, 200, path)
      assert.equal(await res.text(), 'Ok.\n')
    }

    const byHeader = await fetch(`${base(closed)}/clickhouse`, {
      method: 'POST',
      headers: { ...auth, 'X-ClickHouse-Format': 'JSONEachRow' },
      body: "SELECT 1 AS a, 'x' AS b",
    })
    assert.equal(byHeader.headers.get('x-clickhouse-format'), 'JSONEachRow')
    assert.deepEqual(await byHeader.json(), { a: 1, b: 'x' })
    assert.ok(JSON.parse(byHeader.headers.get('x-clickhouse-summary')!).read_rows)

    const byClause = await fetch(`${base(closed)}/clickhouse?default_format=TSV`, {
      method: 'POST',
      headers: auth,
      body: 'SELECT 1 AS a FORMAT CSVWithNames;',
    })
    assert.equal(byClause.headers.get('x-clickhouse-format'), 'CSVWithNames')
    assert.equal(await byClause.text(), '"a"\n1\n')

    const params = await fetch(
      `${base(closed)}/clickhouse?param_ns=shop&database=ebbflow&default_format=TSV`,
      {
        method: 'POST',
        headers: auth,
        body: 'SELECT count() FROM process_events WHERE namespace = {ns:String}',
      },
    )
    const [expected] = await h.store.query<{ n: string }>(
      "SELECT count() AS n FROM ebbflow.process_events WHERE namespace = 'shop'",
    )
    assert.equal(await params.text(), `${expected!.n}\n`)
    // The database held for that statement only.
    const [current] = await h.store.query<{ db: string }>('SELECT currentDatabase() AS db')
    assert.equal(current!.db, 'default')

    const zipped = await fetch(
      `${base(closed)}/clickhouse?enable_http_compression=1&query=${encodeURIComponent('SELECT number FROM numbers(3)')}`,
      { headers: { ...auth, 'Accept-Encoding': 'gzip' } },
    )
    assert.equal(zipped.headers.get('content-encoding'), 'gzip')
    // fetch undoes gzip itself; the bytes are what ClickHouse would have sent.
    assert.equal(await zipped.text(), '0\n1\n2\n')
    const raw = await new Promise<Buffer>((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(
          `${base(closed)}/clickhouse?enable_http_compression=1&query=SELECT%207`,
          { headers: { ...auth, 'Accept-Encoding': 'gzip' } },
          (res) => {
            const chunks: Buffer[] = []
            res
              .on('data', (c: Buffer) => chunks.push(c))
              .on('end', () => resolve(Buffer.concat(chunks)))
          },
        ).on('error', reject),
      )
    })
    assert.equal(gunzipSync(raw).toString(), '7\n')

    const unknown = await fetch(`${base(closed)}/clickhouse`, {
      method: 'POST',
      headers: auth,
      body: 'SELECT * FROM ebbflow.no_such_table',
    })
    assert.equal(unknown.status, 404)
    assert.match(await unknown.text(), /^Code: 60\. DB::Exception: .*no_such_table/)
    assert.equal(unknown.headers.get('x-clickhouse-exception-code'), '60')
  })

  it('@clickhouse/client pings, queries with parameters and reads JSON', async () => {
    const client = createClient({
      // The client reads a URL's path as the database name; the path goes in `pathname`.
      url: base(closed),
      pathname: '/clickhouse',
      username: 'default',
      password: TOKENS.admin,
      compression: { response: true },
      // The refused TRUNCATE below would be logged by the client itself.
      log: { level: ClickHouseLogLevel.OFF },
    })
    try {
      const ping = await client.ping()
      assert.equal(ping.success, true)
      const rs = await client.query({
        query:
          'SELECT namespace, count() AS n FROM ebbflow.process_events WHERE namespace = {ns:String} GROUP BY namespace',
        query_params: { ns: 'bank' },
        format: 'JSONEachRow',
      })
      const rows = await rs.json<{ namespace: string; n: string }>()
      const direct = await h.store.query<{ n: string }>(
        "SELECT count() AS n FROM ebbflow.process_events WHERE namespace = 'bank'",
      )
      assert.deepEqual(rows, [{ namespace: 'bank', n: direct[0]!.n }])
      await assert.rejects(
        client.command({ query: 'TRUNCATE TABLE ebbflow.traffic' }),
        /readonly mode/,
      )
    } finally {
      await client.close()
    }
  })
})
