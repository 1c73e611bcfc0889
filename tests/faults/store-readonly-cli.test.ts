// The store failing under the real CLI: `ebbflow ingest` (a child process, a real broker) has
// its chDB folder turned read-only in the middle of a stream, by a read-only bind mount over it
// (root ignores file modes, so chmod would not stop it). While the folder is read-only the
// group's committed offsets must stay where they were, the ingester must say (log and
// metrics) that it paused and retries with a growing delay, and once the folder is writable
// again every exec the test published must be stored exactly once, nothing dead-lettered.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/common/wire'
import type { Admin, Producer } from 'kafkajs'
import { isRoot } from '../support/capture.ts'
import { startBroker, type TestBroker } from '../support/kafka-broker.ts'
import {
  baseTimeNs,
  type Cli,
  createTopics,
  execBatch,
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
  timeout: 240_000,
}, () => {
  let broker: TestBroker
  let tmp: string
  let dataDir: string
  let producer: Producer
  let admin: Admin
  let mounted = false
  let cli: Cli | undefined
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
  after(async () => {
    if (mounted) spawnSync('umount', [dataDir])
    cli?.kill()
    await cli?.exited
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
})
