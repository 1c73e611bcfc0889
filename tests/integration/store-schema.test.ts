// The schema beyond the raw tables: per-minute rollups and exec sessions that agree with the
// raw rows (also after a batch is delivered twice), retention changes applied as MODIFY TTL,
// the cluster form of every migration (parsed by ClickHouse), and the ClickHouse server store
// through testcontainers where a Docker engine exists.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { CapturedEvent, EventMeta } from '@ebbflow/common'
import {
  ChdbStore,
  ClickHouseStore,
  migrate,
  readMigrations,
  renderStatements,
  type Store,
} from '@ebbflow/store'
import { dockerAvailable } from '../support/kafka-broker.ts'
import { insertEvents } from '../support/rows.ts'
import { syntheticEvents } from './events-fixture.ts'

const NOW_NS = BigInt(Date.now()) * 1_000_000n
/** Boot-time stamps land in the last hour; the offset turns them into wall time. */
const OFFSET_NS = NOW_NS - 3_600_000_000_000n - 1_000_000_000_000n
const ctx = { offsetNs: OFFSET_NS, node: 'node-1', bootId: 'boot-1' }

/** Two `kubectl exec` sessions in one pod: execs with their exits, one failing. */
function sessionEvents(): CapturedEvent[] {
  const out: CapturedEvent[] = []
  const meta = (session: string): EventMeta => ({
    node: 'node-1',
    namespace: 'team-a',
    pod: 'shell-0',
    container: 'app',
    workloadKind: 'StatefulSet',
    workloadName: 'shell',
    session,
  })
  const task = (pid: number, uid: number) => ({
    cgroupId: 77,
    pid,
    tgid: pid,
    ppid: 1,
    uid,
    gid: uid,
    pidnsIno: 1,
    mntnsIno: 2,
    comm: 'sh',
  })
  const commands = [
    ['s-1', '/bin/ls', 0, 0],
    ['s-1', '/bin/cat', 1, 0],
    ['s-2', '/usr/bin/id', 0, 1000],
    ['s-1', '/usr/bin/curl', 0, 0],
    ['s-2', '/bin/false', 1, 1000],
  ] as const
  commands.forEach(([session, filename, code, uid], i) => {
    const bootNs = 1_000_000_000_000 + i * 2_000_000_000
    out.push({
      kind: 'exec',
      bootNs,
      ...task(100 + i, uid),
      parentComm: 'sh',
      filename,
      args: [filename],
      argsTotalBytes: filename.length + 1,
      argsTruncated: false,
      filenameTruncated: false,
      argsReadFailed: false,
      meta: meta(session),
    })
    out.push({
      kind: 'exit',
      bootNs: bootNs + 1_000_000,
      ...task(100 + i, uid),
      durationNs: 1_000_000,
      durationFromFork: false,
      exitCode: code,
      signal: 0,
      coreDumped: false,
      meta: meta(session),
    })
  })
  return out
}

async function rows(store: Store, sql: string): Promise<string[]> {
  return (await store.query(sql)).map((r) => JSON.stringify(r)).sort()
}

describe('schema: rollups, sessions, retention', () => {
  let tmp: string
  let store: ChdbStore

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-schema-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store, { retentionDays: 30 })
  })

  after(async () => {
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('rollup views agree with the raw rows, also after a batch is delivered twice', async () => {
    const events = [...syntheticEvents(4500), ...sessionEvents()]
    const half = Math.floor(events.length / 2)
    await insertEvents(store, events.slice(0, half), ctx, { dedupToken: 'batch-1' })
    await insertEvents(store, events.slice(half), ctx, { dedupToken: 'batch-2' })
    // The redelivery: same token, same rows. Dropped by the raw tables, so never seen by views.
    await insertEvents(store, events.slice(0, half), ctx, { dedupToken: 'batch-1' })

    const [n] = await store.query<{ n: string }>('SELECT count() AS n FROM ebbflow.traffic')
    assert.ok(Number(n!.n) > 0)
    assert.deepEqual(
      await rows(
        store,
        `SELECT toStartOfMinute(time) AS m, namespace, pod, direction, toString(remote_addr) AS peer,
                remote_port, sum(bytes) AS b, sum(packets) AS p
         FROM ebbflow.traffic GROUP BY m, namespace, pod, direction, peer, remote_port`,
      ),
      await rows(
        store,
        `SELECT minute AS m, namespace, pod, direction, toString(remote_addr) AS peer,
                remote_port, sum(bytes) AS b, sum(packets) AS p
         FROM ebbflow.traffic_1m GROUP BY m, namespace, pod, direction, peer, remote_port`,
      ),
      'traffic_1m',
    )
    assert.deepEqual(
      await rows(
        store,
        `SELECT toStartOfMinute(time) AS m, namespace, pod, container, syscall, sum(count) AS c
         FROM ebbflow.syscall_counts GROUP BY m, namespace, pod, container, syscall`,
      ),
      await rows(
        store,
        `SELECT minute AS m, namespace, pod, container, syscall, sum(count) AS c
         FROM ebbflow.syscalls_1m GROUP BY m, namespace, pod, container, syscall`,
      ),
      'syscalls_1m',
    )
    assert.deepEqual(
      await rows(
        store,
        `SELECT toStartOfMinute(time) AS m, namespace, workload_name, function, comm,
                countIf(kind = 'exec') AS execs, countIf(kind = 'exit') AS exits,
                countIf(kind = 'exit' AND (exit_code != 0 OR signal != 0)) AS failed,
                countIf(kind = 'fork') AS forks, sumIf(duration_ns, kind = 'exit') AS d
         FROM ebbflow.process_events GROUP BY m, namespace, workload_name, function, comm`,
      ),
      await rows(
        store,
        `SELECT minute AS m, namespace, workload_name, function, comm, sum(execs) AS execs,
                sum(exits) AS exits, sum(failed) AS failed, sum(forks) AS forks,
                sum(duration_ns) AS d
         FROM ebbflow.execs_1m GROUP BY m, namespace, workload_name, function, comm`,
      ),
      'execs_1m',
    )
    const sessions = await store.query<{
      session: string
      commands: string
      failed: string
      uids: number[]
      first: string
    }>(
      `SELECT session, sum(commands) AS commands, sum(failed) AS failed,
              arraySort(groupUniqArrayArray(uids)) AS uids, argMinMerge(first_command) AS first
       FROM ebbflow.exec_sessions WHERE namespace = 'team-a' GROUP BY session ORDER BY session`,
    )
    assert.deepEqual(sessions, [
      { session: 's-1', commands: '3', failed: '1', uids: [0], first: '/bin/ls' },
      { session: 's-2', commands: '2', failed: '1', uids: [1000], first: '/usr/bin/id' },
    ])
  })

  it('a new retention alters every table TTL once; the same retention changes nothing', async () => {
    const changed = await migrate(store, { retentionDays: 7 })
    assert.deepEqual(changed.applied, [])
    const expectedTables = [
      'process_events',
      'tcp_connections',
      'traffic',
      'syscall_counts',
      'syscall_events',
      'collector_stats',
      'traffic_1m',
      'syscalls_1m',
      'execs_1m',
      'exec_sessions',
      'dead_letters',
      'alert_evaluations',
      'alert_transitions',
      'alert_deliveries',
      'file_accesses',
      'file_accesses_1m',
      'batch_ledger',
    ].map((t) => `ebbflow.${t}`)
    assert.deepEqual([...changed.retentionChanged].sort(), [...expectedTables].sort())
    for (const table of expectedTables) {
      const [r] = await store.query<{ statement: string }>(`SHOW CREATE TABLE ${table}`)
      assert.match(r!.statement, /TTL .*toIntervalDay\(7\)/, table)
      assert.doesNotMatch(r!.statement, /toIntervalDay\(30\)/, table)
    }
    const again = await migrate(store, { retentionDays: 7 })
    assert.deepEqual(again.retentionChanged, [])
  })

  it('every migration has a cluster form ClickHouse parses: Replicated local tables, Distributed over them', async () => {
    let statements = 0
    for (const m of readMigrations())
      for (const s of renderStatements(m, { retentionDays: 30, cluster: 'prod' })) {
        statements++
        const [r] = await store.query<{ f: string }>('SELECT formatQuery({q:String}) AS f', {
          q: s,
        })
        const f = r!.f
        assert.match(f, /ON CLUSTER prod/, s.slice(0, 80))
        if (/^CREATE TABLE/.test(f) && !/ENGINE = Distributed/.test(f)) {
          assert.match(f, /_local ON CLUSTER/, 'local tables carry the _local suffix')
          assert.match(
            f,
            /ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}\/ebbflow\/\w+_local', '\{replica\}'/,
          )
        }
        if (/MATERIALIZED VIEW/.test(f))
          assert.match(f, /TO ebbflow\.\w+_local\s.*FROM ebbflow\.\w+_local/s)
      }
    // 19 tables (4 of them the alerter's, 1 the ingester's server-route checks, 2 of 0007, the
    // batch ledger of 0006) × 2 (local + distributed) + 5 views + the database, + 0003's 5
    // column changes × 2 (a Distributed table keeps the columns it was created with), + 0009's
    // 2 Enum changes (file_accesses, its rollup) × 2.
    assert.equal(statements, 19 * 2 + 5 + 1 + 5 * 2 + 2 * 2)
  })

  it('migrate in cluster mode runs the bookkeeping tables replicated across every shard', async () => {
    const seen: string[] = []
    const recording: Store = {
      exec: async (sql) => {
        seen.push(sql)
      },
      // The one read migrate makes besides its ledgers: which tables exist (its drift check),
      // answered with what the statements it ran created.
      query: async <T>(sql: string) =>
        (sql.includes('system.tables')
          ? seen.flatMap((s) => {
              const name = /^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS ebbflow\.(\w+)/.exec(
                s,
              )?.[1]
              return name ? [{ name }] : []
            })
          : []) as T[],
      insert: async () => {},
      close: async () => {},
    }
    await migrate(recording, { retentionDays: 30, cluster: 'prod' })
    assert.match(seen[0]!, /^CREATE DATABASE IF NOT EXISTS ebbflow ON CLUSTER 'prod'$/)
    assert.match(
      seen[1]!,
      /ebbflow\.schema_migrations ON CLUSTER 'prod'[\s\S]*ReplicatedMergeTree\('\/clickhouse\/tables\/all\/ebbflow\/schema_migrations', '\{replica\}'\)/,
    )
    assert.match(
      seen[2]!,
      /ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/all\/ebbflow\/schema_settings', '\{replica\}', at\)/,
    )
    assert.ok(seen.every((s) => s.includes("ON CLUSTER 'prod'")))
  })
})

const noDocker = dockerAvailable()
  ? false
  : 'no Docker engine: the ClickHouse server store (testcontainers) is not exercised here'

describe('ClickHouse server store (testcontainers)', { skip: noDocker, timeout: 180_000 }, () => {
  it('migrates, deduplicates a re-sent batch and binds query parameters', async () => {
    const { ClickHouseContainer } = await import('@testcontainers/clickhouse')
    const container = await new ClickHouseContainer('clickhouse/clickhouse-server:25.8').start()
    const store = new ClickHouseStore({
      url: container.getHttpUrl(),
      username: container.getUsername(),
      password: container.getPassword(),
    })
    try {
      await migrate(store)
      const events = syntheticEvents(900)
      await insertEvents(store, events, ctx, { dedupToken: 'b-1' })
      await insertEvents(store, events, ctx, { dedupToken: 'b-1' })
      const [r] = await store.query<{ n: string }>(
        'SELECT count() AS n FROM ebbflow.process_events WHERE pid >= {min:UInt32}',
        { min: 0 },
      )
      assert.equal(
        Number(r!.n),
        events.filter((e) => e.kind === 'exec' || e.kind === 'exit' || e.kind === 'fork').length,
      )
    } finally {
      await store.close()
      await container.stop()
    }
  })
})
