// The chDB store: migrations from empty, re-run and tampered with; synthetic events of every
// kind written through the row mapper and read back with SQL; deduplication of a re-sent batch.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  ChdbStore,
  DEFAULT_MIGRATIONS_DIR,
  migrate,
  migrationObjects,
  readMigrations,
  renderStatements,
  TABLES,
} from '@ebbflow/store'
import { execFolder, queryFolder } from '../faults/support.ts'
import { insertEvents } from '../support/rows.ts'
import { syntheticEvents } from './events-fixture.ts'

// Rows older than the retention are gone as soon as they are written (the TTL applies at
// insert), so the synthetic boot-time stamps are placed in the last hour.
const OFFSET_NS = (BigInt(Date.now()) - 3_600_000n) * 1_000_000n - 1_000_000_000_000n
const ctx = { offsetNs: OFFSET_NS, node: 'node-ctx', bootId: 'boot-1' }

async function counts(store: ChdbStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const table of TABLES) {
    const [row] = await store.query<{ n: string }>(`SELECT count() AS n FROM ebbflow.${table}`)
    out[table] = Number(row!.n)
  }
  return out
}

describe('chDB store', { timeout: 180_000 }, () => {
  let tmp: string
  let store: ChdbStore

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-store-'))
    store = await ChdbStore.open(join(tmp, 'data'))
  })

  after(async () => {
    await store?.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('migrates from empty, and a second run is a no-op', async () => {
    const first = await migrate(store, { retentionDays: 7 })
    assert.deepEqual(
      first.applied.map((m) => m.version),
      readdirSync(DEFAULT_MIGRATIONS_DIR)
        .filter((f) => f.endsWith('.sql'))
        .map((f) => Number(f.slice(0, 4))),
    )
    const second = await migrate(store, { retentionDays: 7 })
    assert.deepEqual(second.applied, [])
    assert.deepEqual(
      second.skipped,
      first.applied.map((m) => m.version),
    )
    const ledger = await store.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM ebbflow.schema_migrations ORDER BY version',
    )
    assert.deepEqual(
      ledger,
      first.applied.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
    )
    const tables = await store.query<{ name: string }>(
      "SELECT name FROM system.tables WHERE database = 'ebbflow' ORDER BY name",
    )
    assert.deepEqual(
      tables.map((t) => t.name).sort(),
      [
        ...TABLES,
        'schema_migrations',
        'schema_settings',
        'dead_letters',
        // 0004: the alerter's state.
        ...['alert_evaluations', 'alert_state', 'alert_transitions', 'alert_deliveries'],
        // 0005: a ClickHouse server's per-block checks (the ingester's server route).
        'ingest_problems',
        // 0006: the batch ledger.
        'batch_ledger',
        ...['traffic_1m', 'syscalls_1m', 'execs_1m', 'exec_sessions', 'file_accesses_1m'].flatMap(
          (t) => [t, `${t}_mv`],
        ),
      ].sort(),
    )
  })

  it('has daily partitions, the configured TTL and the sort key in every table', async () => {
    for (const table of TABLES) {
      const [row] = await store.query<{ statement: string }>(`SHOW CREATE TABLE ebbflow.${table}`)
      const ddl = row!.statement
      assert.match(ddl, /PARTITION BY toDate\(time\)/, table)
      assert.match(ddl, /TTL toDateTime\(time\) \+ toIntervalDay\(7\)/, table)
      assert.match(ddl, /non_replicated_deduplication_window = 1000/, table)
      if (table !== 'collector_stats') assert.match(ddl, /ORDER BY \(namespace, pod, time\)/, table)
      assert.match(ddl, /`time` DateTime64\(9, 'UTC'\) CODEC\(DoubleDelta, ZSTD\(1\)\)/, table)
    }
  })

  it('applies a new migration only, and refuses when an applied one was edited', async () => {
    const dir = join(tmp, 'migrations')
    cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true })
    writeFileSync(
      join(dir, '9000_extra.sql'),
      '-- a test table\nCREATE TABLE IF NOT EXISTS ebbflow.extra (a UInt8) ENGINE = MergeTree ORDER BY a;\n',
    )
    const added = await migrate(store, { dir })
    assert.deepEqual(
      added.applied.map((m) => m.name),
      ['extra'],
    )
    const [file] = readdirSync(dir).filter((f) => f.startsWith('0001_'))
    writeFileSync(join(dir, file!), `-- edited after it was applied\n${'SELECT 1;\n'}`)
    await assert.rejects(migrate(store, { dir }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MIGRATION_CHANGED')
      assert.match(err.message, /migration 1 \(initial\) was applied with checksum/)
      return true
    })
    await store.exec('DROP TABLE ebbflow.extra')
  })

  it('stores synthetic events of every kind, with their meta', async () => {
    const events = syntheticEvents(90)
    const written = await insertEvents(store, events, ctx)
    const expected = {
      process_events: 30,
      tcp_connections: 10,
      traffic: 10,
      syscall_counts: 20,
      syscall_events: 10,
      // The synthetic set has no file records (one-definition and file-landlock store them).
      file_accesses: 0,
      collector_stats: 10,
    }
    assert.deepEqual(written, expected)
    assert.deepEqual(await counts(store), expected)

    const [exec] = await store.query(
      `SELECT kind, namespace, pod, container, workload_kind, node, boot_id, labels, args,
              filename, toString(toUnixTimestamp64Nano(time)) AS ns, pid, cgroup_id
       FROM ebbflow.process_events WHERE pod = {pod:String}`,
      { pod: 'web-0' },
    )
    assert.deepEqual(exec, {
      kind: 'exec',
      namespace: 'default',
      pod: 'web-0',
      container: 'web',
      workload_kind: 'Deployment',
      node: 'node-a',
      boot_id: 'boot-1',
      labels: { app: 'web' },
      args: ['/usr/bin/python3', '-m', 'http.server', '--bind', '127.0.0.1', '8000'],
      filename: '/usr/bin/python3',
      ns: (OFFSET_NS + 1_000_000_000_000n).toString(),
      pid: 1000,
      cgroup_id: String(2 ** 40),
    })
    const [exit] = await store.query(
      `SELECT node, namespace, duration_ns, exit_code FROM ebbflow.process_events
       WHERE kind = 'exit' AND pid = 1001`,
    )
    assert.deepEqual(exit, {
      node: 'node-ctx',
      namespace: '',
      duration_ns: '5000000123',
      exit_code: 3,
    })

    const [tcp] = await store.query(
      `SELECT event, role, daddr, bytes_sent, sock_id FROM ebbflow.tcp_connections WHERE pid = 1003`,
    )
    assert.deepEqual(tcp, {
      event: 'close',
      role: 'active',
      daddr: '2001:db8::1',
      bytes_sent: String(2 ** 33),
      sock_id: String(2 ** 47 + 3),
    })
    const [traffic] = await store.query<{ remote_addr: string; bytes: string }>(
      'SELECT remote_addr, bytes FROM ebbflow.traffic LIMIT 1',
    )
    assert.deepEqual(traffic, { remote_addr: '::ffff:10.0.0.7', bytes: '20480' })
    const [syscall] = await store.query(
      `SELECT syscall, args, string_args, string_values FROM ebbflow.syscall_events WHERE pid = 1005`,
    )
    assert.deepEqual(syscall, {
      syscall: 'mount',
      args: [String(0x7ffd_1234_5678n), '18446744073709551600', '0', '1', '0', '0'],
      string_args: [0],
      string_values: ['/dev/sda1'],
    })
    const [sums] = await store.query(
      `SELECT (SELECT toString(sum(count)) FROM ebbflow.syscall_counts) AS calls,
              (SELECT toString(sum(value)) FROM ebbflow.collector_stats WHERE metric = 'drops') AS drops`,
    )
    const calls = events.reduce((n, e) => n + (e.kind === 'syscall_count' ? e.count : 0), 0)
    assert.deepEqual(sums, { calls: String(calls), drops: '30' })
    const partitions = await store.query<{ partition: string }>(
      "SELECT DISTINCT partition FROM system.parts WHERE database = 'ebbflow' AND table = 'process_events' AND active",
    )
    const day = new Date(Number((OFFSET_NS + 1_000_000_000_000n) / 1_000_000n))
      .toISOString()
      .slice(0, 10)
    assert.deepEqual(partitions, [{ partition: day }])
  })

  it('keeps one copy of a batch sent twice with the same token', async () => {
    const before = await counts(store)
    const batch = syntheticEvents(18, 2_000_000_000_000)
    await insertEvents(store, batch, ctx, { dedupToken: 'batch-a' })
    const once = await counts(store)
    await insertEvents(store, batch, ctx, { dedupToken: 'batch-a' })
    assert.deepEqual(await counts(store), once)
    assert.equal(once.process_events, before.process_events! + 6)
    // Another token is another batch, even with the same rows.
    await insertEvents(store, batch, ctx, { dedupToken: 'batch-b' })
    assert.equal((await counts(store)).process_events, once.process_events! + 6)
  })

  it('keeps identical inserts without a token (no deduplication by content)', async () => {
    await store.exec(
      'CREATE TABLE ebbflow.dedup_plain (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100',
    )
    try {
      await store.insert('ebbflow.dedup_plain', [{ a: 1 }])
      await store.insert('ebbflow.dedup_plain', [{ a: 1 }])
      const [row] = await store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.dedup_plain')
      assert.equal(row!.n, '2')
    } finally {
      await store.exec('DROP TABLE ebbflow.dedup_plain')
    }
  })

  // DESIGN.md recorded that this form did not deduplicate in an earlier check; with chDB 3.4.0
  // (ClickHouse 26.7) it does. The store uses insert() with settings (above) either way.
  it('also deduplicates INSERT … SETTINGS insert_deduplication_token in SQL', async () => {
    await store.exec(
      'CREATE TABLE ebbflow.dedup_probe (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100',
    )
    try {
      for (let i = 0; i < 2; i++)
        await store.exec(
          "INSERT INTO ebbflow.dedup_probe SETTINGS insert_deduplication_token = 't1' VALUES (1), (2)",
        )
      const [row] = await store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.dedup_probe')
      assert.equal(row!.n, '2')
    } finally {
      await store.exec('DROP TABLE ebbflow.dedup_probe')
    }
  })
})

describe('ebbflow migrate', { timeout: 180_000 }, () => {
  const bin = join(import.meta.dirname, '../../bin/ebbflow')
  let tmp: string

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-migrate-'))
  })

  after(() => {
    rmSync(tmp, { recursive: true, force: true })
  })

  it('migrates a data folder, then finds it up to date', () => {
    const env = { ...process.env, EBBFLOW_DATA_DIR: join(tmp, 'data') }
    execFileSync(bin, ['migrate'], { env, stdio: 'pipe' })
    const second = spawnSync(bin, ['migrate', '--data-dir', join(tmp, 'data')], {
      encoding: 'utf8',
    })
    assert.equal(second.status, 0, second.stderr)
    const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length
    assert.match(
      second.stderr + second.stdout,
      new RegExp(`"applied":0,"upToDate":${files}.*schema up to date`),
    )
  })

  // A table and a view that applied migrations created, dropped by hand (or left out of a
  // restore): the migrator names them instead of reporting the schema up to date, and
  // --recreate-missing brings them back as they were, later migrations' columns included.
  it('names tables of applied migrations that are gone, and creates them again when asked', () => {
    const dir = join(tmp, 'drift')
    const env = { ...process.env, EBBFLOW_DATA_DIR: dir }
    execFileSync(bin, ['migrate'], { env, stdio: 'pipe' })
    const objects = ['ebbflow.process_events', 'ebbflow.execs_1m_mv']
    // chDB opens a folder in one process at a time: a child reads and drops them.
    const definitions = (): string[] =>
      objects.map(
        (o) => queryFolder<{ statement: string }>(dir, `SHOW CREATE TABLE ${o}`)[0]!.statement,
      )
    const before = definitions()
    assert.match(before[0]!, /service_account/, 'a column a later migration added')
    execFolder(dir, 'DROP VIEW ebbflow.execs_1m_mv', 'DROP TABLE ebbflow.process_events')

    const refused = spawnSync(bin, ['migrate'], { env, encoding: 'utf8' })
    assert.equal(refused.status, 1, refused.stderr)
    assert.match(refused.stderr, /ebbflow\.process_events \(migration 1, initial\)/)
    assert.match(refused.stderr, /ebbflow\.execs_1m_mv \(migration 2, /)
    assert.match(refused.stderr, /--recreate-missing/)

    const repaired = spawnSync(bin, ['migrate', '--recreate-missing'], { env, encoding: 'utf8' })
    assert.equal(repaired.status, 0, repaired.stderr)
    assert.match(
      repaired.stderr + repaired.stdout,
      /"recreated":\["ebbflow\.process_events","ebbflow\.execs_1m_mv"\]/,
    )
    assert.deepEqual(definitions(), before)
    const again = spawnSync(bin, ['migrate'], { env, encoding: 'utf8' })
    assert.equal(again.status, 0, again.stderr)
    assert.match(again.stderr + again.stdout, /schema up to date/)
  })

  // The same check in cluster form, without a cluster: every name it looks for is one the
  // cluster statements create.
  it('looks in cluster form for the names the cluster statements create', () => {
    const migrations = readMigrations()
    const created = new Set(
      migrations
        .flatMap((m) => renderStatements(m, { retentionDays: 30, cluster: 'prod' }))
        .map(
          (st) => /^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (ebbflow\.\w+)/.exec(st)?.[1],
        )
        .filter((name) => name !== undefined),
    )
    const expected = [...migrationObjects(migrations, 'prod').keys()]
    assert.ok(expected.includes('ebbflow.process_events_local'), expected.join(' '))
    assert.ok(expected.includes('ebbflow.execs_1m_mv_local'), expected.join(' '))
    assert.deepEqual(
      expected.filter((name) => !created.has(name)),
      [],
    )
  })

  it('names an unreachable ClickHouse server and exits 1', async () => {
    const { freePort } = await import('../support/kafka-broker.ts')
    const port = await freePort()
    const r = spawnSync(bin, ['migrate', '--clickhouse', `http://127.0.0.1:${port}`], {
      encoding: 'utf8',
    })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /ebbflow: statement failed: .*ECONNREFUSED|connect ECONNREFUSED/)
  })

  it('prints the cluster form with --print --cluster, without a store', () => {
    const r = spawnSync(bin, ['migrate', '--print', '--cluster', 'prod'], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.match(
      r.stdout,
      /CREATE TABLE IF NOT EXISTS ebbflow\.process_events_local ON CLUSTER 'prod'/,
    )
    assert.match(
      r.stdout,
      /ENGINE = Distributed\('prod', 'ebbflow', 'process_events_local', rand\(\)\)/,
    )
    // The variable is read where every other setting is, with the same check as the flag.
    const fromEnv = spawnSync(bin, ['migrate', '--print'], {
      encoding: 'utf8',
      env: { ...process.env, EBBFLOW_CLUSTER: 'staging' },
    })
    assert.equal(fromEnv.status, 0, fromEnv.stderr)
    assert.match(fromEnv.stdout, /ON CLUSTER 'staging'/)
    const bad = spawnSync(bin, ['migrate', '--print', '--cluster', "x'; DROP"], {
      encoding: 'utf8',
    })
    assert.equal(bad.status, 2, bad.stderr)
    assert.match(bad.stderr, /cluster.*spliced into DDL/)
  })
})
