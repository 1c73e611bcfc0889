// The store failing under the real CLI: `ebbflow ingest` (a child process, a real broker) has
// its chDB folder turned read-only in the middle of a stream, by a read-only bind mount over it
// (root ignores file modes, so chmod would not stop it). While the folder is read-only the
// group's committed offsets must stay where they were, the ingester must say (log and
// metrics) that it paused and retries with a growing delay, and once the folder is writable
// again every exec the test published must be stored exactly once, nothing dead-lettered.
//
// A store error no retry cures, on the same broker: the store lacks a table the records need
// (dropped after the migrations, the ingester started without migrating). The ingester must
// blame the store, not the records: one error line naming the cause, a metric, no offset
// committed, nothing dead-lettered, and after a bounded time an exit with status 1 for a
// supervisor to restart it. Once the table is back, a restarted ingester stores every exec the
// test published, once.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/common/wire'
import type { Admin, Producer } from 'kafkajs'
import { isRoot } from '../support/capture.ts'
import { freePort, startBroker, type TestBroker } from '../support/kafka-broker.ts'
import {
  baseTimeNs,
  bin,
  Cli,
  createTopics,
  execBatch,
  execFolder,
  ingest,
  kafka,
  repeated,
  storedExecIds,
  waitFor,
} from './support.ts'

const hasJava = spawnSync('java', ['-version']).status === 0
const skip = !isRoot()
  ? 'needs root for a read-only bind mount'
  : !hasJava
    ? 'needs Java 17+ for the local Kafka broker'
    : false

describe('store that cannot write, through `ebbflow ingest` and a real broker', {
  skip,
  timeout: 360_000,
}, () => {
  let broker: TestBroker
  let tmp: string
  let dataDir: string
  let producer: Producer
  let admin: Admin
  let mounted = false
  let cli: Cli | undefined
  let wide: Cli | undefined
  const group = `readonly-${process.pid}`
  const dlq = `readonly-dlq-${process.pid}`

  before(async () => {
    broker = await startBroker()
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-ro-cli-'))
    dataDir = join(tmp, 'data')
    mkdirSync(dataDir)
    await createTopics(broker.bootstrap, 1, [dlq])
    producer = kafka(broker.bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    admin = kafka(broker.bootstrap).admin()
    await admin.connect()
  })
  /** Processes of the later cases, ended whatever their assertions did. */
  const running: Cli[] = []
  after(async () => {
    for (const p of running) p.kill()
    await Promise.all(running.map((p) => p.exited))
    if (mounted) spawnSync('umount', [dataDir])
    cli?.kill()
    await cli?.exited
    wide?.kill()
    await wide?.exited
    await producer?.disconnect()
    await admin?.disconnect()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  const committed = async (): Promise<string> => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [TOPICS.exec] })
    return t!.partitions.find((p) => p.partition === 0)!.offset
  }
  const end = async (topic: string): Promise<string> =>
    (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 0)!.high

  it('keeps its offsets while paused, retries with backoff, stores every exec once after', async () => {
    const node = 'node-ro-cli'
    const bootId = `boot-${process.pid}`
    const t0 = baseTimeNs()
    const published: string[] = []
    let sequence = 0
    let tgid = 1
    const publish = async (records: number, per: number) => {
      for (let r = 0; r < records; r++) {
        const b = execBatch(node, bootId, sequence++, tgid, per, t0)
        tgid += per
        await producer.send({ topic: TOPICS.exec, acks: -1, messages: [{ value: b.value }] })
        published.push(...b.ids)
      }
    }

    cli = ingest(broker.bootstrap, dataDir, group, {
      EBBFLOW_METRICS_PORT: '0',
      EBBFLOW_METRICS_HOST: '127.0.0.1',
      EBBFLOW_DLQ_TOPIC: dlq,
      EBBFLOW_INGEST_MAX_WAIT_MS: '100',
    })
    const ready = JSON.parse(await cli.waitForLine(/"msg":"ingesting"/, 60_000)) as {
      metricsPort: number
    }
    // The group's first join on a fresh broker creates its offsets topic: slow on a busy machine.
    await cli.waitForLine(/"msg":"joined the group"/, 90_000)
    const metrics = async () =>
      (await fetch(`http://127.0.0.1:${ready.metricsPort}/metrics`)).text()

    // 40 execs stored while the folder is writable.
    await publish(4, 10)
    const before = await end(TOPICS.exec)
    await waitFor('the first records committed', async () => (await committed()) === before, 60_000)

    execFileSync('mount', ['--bind', dataDir, dataDir])
    mounted = true
    execFileSync('mount', ['-o', 'remount,bind,ro', dataDir])
    const outageFrom = cli.lines.length

    // 80 more while it is read-only.
    await publish(8, 10)
    const failed = /storing a block failed; partition paused, retrying/
    await waitFor(
      'three failed attempts',
      () => cli!.matching(failed, outageFrom).length >= 3,
      30_000,
    )
    const delays = cli
      .matching(failed, outageFrom)
      .map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs)
    assert.deepEqual(delays.slice(0, 3), [250, 500, 1000], 'the retry delay doubles')
    for (const l of cli.matching(failed, outageFrom))
      assert.match(l, /Read-only file system/, 'the log names the store failure')
    assert.equal(await committed(), before, 'no offset committed while the store cannot write')
    const during = await metrics()
    assert.match(during, /^ebbflow_ingest_paused_partitions 1$/m, 'the partition is paused')
    const retriableFailures = Number(
      /^ebbflow_ingest_insert_failures_total\{retriable="true"\} (\d+)$/m.exec(during)?.[1] ?? 0,
    )
    assert.ok(retriableFailures >= 3, `${retriableFailures} retriable insert failures counted`)
    assert.doesNotMatch(during, /retriable="false"\} [1-9]/, 'nothing refused as a bad record')
    assert.equal(await end(dlq), '0', 'nothing dead-lettered during the outage')
    assert.equal(await committed(), before, 'still no offset committed')

    execFileSync('umount', [dataDir])
    mounted = false
    const after = await end(TOPICS.exec)
    await waitFor(
      'every record committed after recovery',
      async () => (await committed()) === after,
      60_000,
    )
    assert.match(await metrics(), /^ebbflow_ingest_paused_partitions 0$/m, 'resumed')
    await cli.stop()

    const stored = storedExecIds(dataDir, node)
    const sent = new Set(published)
    process.stdout.write(
      `${JSON.stringify({ published: published.length, stored: stored.length, failedAttempts: delays.length, retriableFailures })}\n`,
    )
    assert.equal(published.length, 120)
    assert.deepEqual(
      published.filter((id) => !stored.includes(id)),
      [],
      'every published exec stored',
    )
    assert.deepEqual([...repeated(stored).keys()], [], 'none stored twice')
    assert.deepEqual(
      stored.filter((id) => !sent.has(id)),
      [],
      'nothing stored that was not published',
    )
    assert.equal(await end(dlq), '0', 'nothing dead-lettered')
  })

  it('blames a missing table on the store: no commit, no dead letter, exit 1, all stored once it is back', async () => {
    const node = 'node-no-table'
    const bootId = `boot-wide-${process.pid}`
    const wideGroup = `no-table-${process.pid}`
    const wideDir = join(tmp, 'no-table')
    mkdirSync(wideDir)
    // The schema migrated, then the table execs go to gone: what a store restored without it
    // looks like. chDB opens a folder in one process at a time: a child migrates and drops it
    // (keeping its definition to put it back).
    const inFolder = (script: string): string =>
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { ChdbStore, migrate } from '@ebbflow/store'
           const s = await ChdbStore.open(${JSON.stringify(wideDir)})
           ${script}
           await s.close()`,
        ],
        { cwd: join(import.meta.dirname, '../..'), encoding: 'utf8' },
      )
    const definition = inFolder(
      `await migrate(s)
       const [r] = await s.query('SHOW CREATE TABLE ebbflow.process_events')
       await s.exec('DROP TABLE ebbflow.process_events')
       process.stdout.write(r.statement)`,
    )
    assert.match(definition, /^CREATE TABLE ebbflow\.process_events/)
    const wideCommitted = async (): Promise<string> => {
      const [t] = await admin.fetchOffsets({ groupId: wideGroup, topics: [TOPICS.exec] })
      return t!.partitions.find((p) => p.partition === 0)!.offset
    }
    const start = (env: Record<string, string> = {}) =>
      ingest(broker.bootstrap, wideDir, wideGroup, {
        EBBFLOW_METRICS_PORT: '0',
        EBBFLOW_METRICS_HOST: '127.0.0.1',
        EBBFLOW_DLQ_TOPIC: dlq,
        EBBFLOW_INGEST_MAX_WAIT_MS: '100',
        EBBFLOW_MIGRATE: 'false',
        ...env,
      })
    const dlqBefore = await end(dlq)
    const t0 = baseTimeNs()
    const published: string[] = []
    for (let r = 0; r < 4; r++) {
      const b = execBatch(node, bootId, r, 1 + 10 * r, 10, t0)
      await producer.send({ topic: TOPICS.exec, acks: -1, messages: [{ value: b.value }] })
      published.push(...b.ids)
    }
    const topicEnd = await end(TOPICS.exec)

    const exitMs = 3000
    wide = start({ EBBFLOW_INGEST_STORE_FAILURE_EXIT_MS: String(exitMs) })
    const ready = JSON.parse(await wide.waitForLine(/"msg":"ingesting"/, 60_000)) as {
      metricsPort: number
    }
    const cause = /the store cannot take any block and no retry cures it/
    const first = JSON.parse(await wide.waitForLine(cause, 90_000)) as {
      level: number
      code: string
      err: { message: string }
    }
    const seen = performance.now()
    assert.equal(first.code, 'CLICKHOUSE_60', "the log names ClickHouse's UNKNOWN_TABLE")
    assert.match(first.err.message, /process_events/, 'the log names the missing table')
    assert.equal(first.level, 50, 'logged as an error')
    const metrics = await (await fetch(`http://127.0.0.1:${ready.metricsPort}/metrics`)).text()
    assert.match(metrics, /^ebbflow_ingest_store_unusable\{code="CLICKHOUSE_60"\} 1$/m)
    assert.match(metrics, /^ebbflow_ingest_paused_partitions 1$/m)

    const exited = await wide.exited
    const waited = performance.now() - seen
    assert.equal(exited.code, 1, 'the ingester exits with status 1 for a restart')
    assert.ok(waited < exitMs + 15_000, `exited ${Math.round(waited)} ms after the first error`)
    assert.equal(wide.matching(cause).length, 1, 'one error line, not one per retry')
    assert.ok(
      wide.matching(/"msg":"giving up on the store; exiting for a restart"/).length === 1 &&
        wide.matching(/^ebbflow: the store refused a block .*CLICKHOUSE_60/).length === 1,
      `it says why it exits:\n${wide.lines.slice(-5).join('\n')}`,
    )
    assert.equal(wide.matching(/the store refused a record/).length, 0, 'no record blamed')
    // Only the plan of the first block may be committed: its first offset, never past it.
    assert.ok(
      ['-1', '0'].includes(await wideCommitted()),
      `committed ${await wideCommitted()}, expected nothing past offset 0`,
    )
    assert.equal(await end(dlq), dlqBefore, 'nothing dead-lettered')

    // The cause removed as an operator would: `ebbflow migrate --recreate-missing` puts the
    // table back as it was; a restarted ingester stores every exec.
    execFileSync(
      join(import.meta.dirname, '../../bin/ebbflow'),
      ['migrate', '--recreate-missing', '--data-dir', wideDir],
      { stdio: 'pipe' },
    )
    assert.equal(
      inFolder(
        `process.stdout.write((await s.query('SHOW CREATE TABLE ebbflow.process_events'))[0].statement)`,
      ),
      definition,
    )
    wide = start()
    await waitFor(
      'every record committed after the migration',
      async () => (await wideCommitted()) === topicEnd,
      90_000,
    )
    await wide.stop()
    const stored = storedExecIds(wideDir, node)
    process.stdout.write(
      `${JSON.stringify({ noTable: { published: published.length, stored: stored.length, exitAfterMs: Math.round(waited) } })}\n`,
    )
    assert.equal(published.length, 40)
    assert.deepEqual(
      published.filter((id) => !stored.includes(id)),
      [],
      'every published exec stored',
    )
    assert.deepEqual([...repeated(stored).keys()], [], 'none stored twice')
    assert.equal(stored.length, published.length, 'nothing else stored')
    assert.equal(await end(dlq), dlqBefore, 'still nothing dead-lettered')
  })

  // An error that is neither a record's nor on the list of store-wide codes: the ledger's
  // batch_id column made a number under the ingester, so every block's bookkeeping insert fails
  // (its rows were stored first). It used to be retried every 5 s for ever with a warning
  // each time; it is now said once as an error, nothing is committed, the ingester exits 1, and
  // once the column is back a restarted ingester stores every exec once (the rows already in
  // went in under the same tokens).
  it('gives up on an error the store repeats for every block, then stores every exec once', async () => {
    const dir = join(tmp, 'ledger')
    const ledgerGroup = `readonly-ledger-${process.pid}`
    const node = 'node-ro-ledger'
    execFileSync(bin, ['migrate', '--data-dir', dir], { stdio: 'pipe' })
    execFolder(dir, 'ALTER TABLE ebbflow.batch_ledger MODIFY COLUMN batch_id UInt64')
    const start = (env: Record<string, string> = {}) =>
      ingest(broker.bootstrap, dir, ledgerGroup, {
        EBBFLOW_DLQ_TOPIC: dlq,
        EBBFLOW_INGEST_MAX_WAIT_MS: '100',
        EBBFLOW_MIGRATE: 'false',
        ...env,
      })
    const ledgerCommitted = async (): Promise<string> => {
      const [t] = await admin.fetchOffsets({ groupId: ledgerGroup, topics: [TOPICS.exec] })
      return t!.partitions.find((p) => p.partition === 0)!.offset
    }
    const dlqBefore = await end(dlq)
    const before = await end(TOPICS.exec)
    const published: string[] = []
    const t0 = baseTimeNs()
    for (let r = 0; r < 3; r++) {
      const b = execBatch(node, `boot-ledger-${process.pid}`, r, 1 + 10 * r, 10, t0)
      await producer.send({ topic: TOPICS.exec, acks: -1, messages: [{ value: b.value }] })
      published.push(...b.ids)
    }
    const topicEnd = await end(TOPICS.exec)
    const exitMs = 3000
    const failing = start({ EBBFLOW_INGEST_STORE_FAILURE_EXIT_MS: String(exitMs) })
    running.push(failing)
    const cause = /the store cannot take any block and no retry cures it/
    const first = JSON.parse(await failing.waitForLine(cause, 90_000)) as { code: string }
    assert.match(first.code, /^CLICKHOUSE_\d+$/, 'the log names the store error')
    const exited = await failing.exited
    assert.equal(exited.code, 1, failing.lines.slice(-5).join('\n'))
    assert.equal(failing.matching(cause).length, 1, 'one error line, not one per retry')
    assert.equal(failing.matching(/retrying"/).length, 0, 'no warning per retry')
    const committedThen = await ledgerCommitted()
    assert.ok(
      BigInt(committedThen) <= BigInt(before),
      `committed ${committedThen}: nothing of the failing blocks (they start at ${before})`,
    )
    assert.equal(await end(dlq), dlqBefore, 'nothing dead-lettered')

    execFolder(dir, 'ALTER TABLE ebbflow.batch_ledger MODIFY COLUMN batch_id String')
    const again = start()
    running.push(again)
    try {
      await waitFor(
        'every record committed',
        async () => (await ledgerCommitted()) === topicEnd,
        90_000,
      )
    } finally {
      await again.stop()
    }
    const stored = storedExecIds(dir, node)
    assert.deepEqual(
      published.filter((id) => !stored.includes(id)),
      [],
      'every published exec stored',
    )
    assert.deepEqual([...repeated(stored).keys()], [], 'none stored twice')
    assert.equal(await end(dlq), dlqBefore, 'still nothing dead-lettered')
  })

  // The same store error under `ebbflow up --kafka` (capture, ingester, API in one process):
  // its ingester gives up as `ebbflow ingest` does, and `up` exits with status 1 instead of
  // running on with a stopped ingester.
  it('ends `ebbflow up --kafka` with status 1 when its store cannot take any block', async () => {
    const upDir = join(tmp, 'up')
    const upGroup = `readonly-up-${process.pid}`
    execFileSync(bin, ['migrate', '--data-dir', upDir], { stdio: 'pipe' })
    execFolder(upDir, 'DROP TABLE ebbflow.process_events')
    const b = execBatch('node-ro-up', `boot-up-${process.pid}`, 0, 1, 10, baseTimeNs())
    await producer.send({ topic: TOPICS.exec, acks: -1, messages: [{ value: b.value }] })
    const exitMs = 3000
    const up = new Cli(
      [
        'up',
        '--kafka',
        broker.bootstrap,
        '--data-dir',
        upDir,
        '--port',
        String(await freePort()),
        '--migrate',
        'false',
      ],
      {
        EBBFLOW_GROUP_ID: upGroup,
        EBBFLOW_INGEST_STORE_FAILURE_EXIT_MS: String(exitMs),
        EBBFLOW_INGEST_SESSION_TIMEOUT_MS: '6000',
        EBBFLOW_LOG_LEVEL: 'info',
      },
    )
    try {
      await up.waitForLine(/ebbflow is up/, 120_000)
      const cause = /the store cannot take any block and no retry cures it/
      await up.waitForLine(cause, 90_000)
      const exited = await Promise.race([
        up.exited,
        new Promise<'running'>((r) => setTimeout(() => r('running'), exitMs + 60_000)),
      ])
      assert.notEqual(exited, 'running', `up still running:\n${up.lines.slice(-10).join('\n')}`)
      assert.equal((exited as { code: number | null }).code, 1, up.lines.slice(-10).join('\n'))
      assert.equal(up.matching(/giving up on the store; exiting for a restart/).length, 1)
      assert.equal(up.matching(cause).length, 1, 'one error line, not one per retry')
      const [t] = await admin.fetchOffsets({ groupId: upGroup, topics: [TOPICS.exec] })
      const offset = t!.partitions.find((p) => p.partition === 0)!.offset
      assert.ok(['-1', '0'].includes(offset), `committed ${offset}: nothing past the first block`)
    } finally {
      up.kill()
      await up.exited
    }
  })
})
