// Secrets typed on command lines never leave the collector: `ebbflow up --kafka` on a real
// broker, real execs carrying ~300 secret forms (each secret a unique marker), then every place
// an exec can end up is searched for the markers: the Kafka topics (events and dead letters),
// every table of the store, the process's logs and the GraphQL API. Each place must show the
// run's non-secret arguments (so the search looks at the right data) and none of the markers;
// one of the run's records is sent again corrupted, so the dead letters hold the run too.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ChdbStore } from '@ebbflow/store'
import { Kafka, logLevel } from 'kafkajs'
import { isRoot } from '../support/capture.ts'
import { gql } from '../support/graphql.ts'
import {
  brokerUnavailable,
  freePort,
  startBroker,
  type TestBroker,
} from '../support/kafka-broker.ts'
import { secretForms } from './secret-forms.ts'

const bin = join(import.meta.dirname, '../../bin/ebbflow')
const REDACTED = '*****'

interface ExecNode {
  filename: string
  args: string[]
}

/** Every exec of the run (those carrying runId), and the raw text of every page read. */
async function runExecs(url: string, from: string, runId: string) {
  const found: ExecNode[] = []
  let text = ''
  let after: string | null = null
  for (;;) {
    const d: {
      execEvents: {
        edges: { node: ExecNode }[]
        pageInfo: { hasNextPage: boolean; endCursor: string | null }
      }
    } = await gql(
      url,
      `query($from: DateTime!, $after: String) {
        execEvents(filter: { from: $from }, first: 500, after: $after) {
          edges { node { filename args } } pageInfo { hasNextPage endCursor } } }`,
      { from, after },
    )
    text += JSON.stringify(d)
    for (const e of d.execEvents.edges) if (e.node.args.includes(runId)) found.push(e.node)
    if (!d.execEvents.pageInfo.hasNextPage) return { found, text }
    after = d.execEvents.pageInfo.endCursor
  }
}

const skip = !isRoot() ? 'needs root to load BPF programs' : brokerUnavailable()

describe('secrets in command lines', { skip: skip ?? false, timeout: 240_000 }, () => {
  let broker: TestBroker
  let tmp: string
  let up: ChildProcess | undefined
  let logs = ''

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-redact-'))
    broker = await startBroker()
  })
  after(async () => {
    if (up && up.exitCode === null) up.kill('SIGKILL')
    await broker?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('keeps every marker out of Kafka, the store, the dead letters, the logs and the API', async () => {
    const forms = secretForms()
    assert.ok(forms.length >= 300, `${forms.length} forms`)
    const runId = `run-${randomUUID()}`
    // Binary-specific rules need the binary's name: links to /bin/true named like the tools.
    const bins = join(tmp, 'bin')
    mkdirSync(bins)
    for (const b of new Set(forms.map((f) => f.binary))) symlinkSync('/bin/true', join(bins, b))
    const markers = forms.map(() => `Zq${randomBytes(9).toString('hex')}`)

    const port = await freePort()
    const dataDir = join(tmp, 'data')
    up = spawn(
      bin,
      [
        'up',
        '--kafka',
        broker.bootstrap,
        '--data-dir',
        dataDir,
        '--port',
        String(port),
        '--families',
        'exec',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EBBFLOW_LOG_LEVEL: 'debug' } },
    )
    for (const stream of [up.stdout!, up.stderr!])
      stream.setEncoding('utf8').on('data', (d: string) => {
        logs += d
      })
    const deadline = Date.now() + 90_000
    while (!/ebbflow is up/.test(logs)) {
      if (up.exitCode !== null) throw new Error(`ebbflow up exited ${up.exitCode}: ${logs}`)
      if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${logs}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const url = `http://127.0.0.1:${port}/graphql`
    const from = new Date(Date.now() - 5_000).toISOString()

    const sent = forms.map((form, i) => {
      const args = form.args.map((a) => a.replaceAll('\0', markers[i]!))
      const argv = [runId, `keep-${i}`, ...args]
      const r = spawnSync(join(bins, form.binary), argv, { stdio: 'ignore' })
      assert.equal(r.status, 0)
      return { form, argv }
    })

    // Every exec arrives (through Kafka and the ingester) before anything is searched.
    let seen = await runExecs(url, from, runId)
    while (seen.found.length < forms.length && Date.now() < deadline + 60_000) {
      await new Promise((r) => setTimeout(r, 500))
      seen = await runExecs(url, from, runId)
    }
    assert.equal(seen.found.length, forms.length, 'every exec reached the API')

    const byKeep = new Map(seen.found.map((e) => [e.args[2], e]))
    for (const [i, { form, argv }] of sent.entries()) {
      const got = byKeep.get(`keep-${i}`)
      assert.ok(got, `exec ${i} found`)
      assert.equal(got.filename, join(bins, form.binary))
      // Non-secret arguments are intact; the secret is replaced where it stood.
      assert.deepEqual(got.args.slice(0, 3), [join(bins, form.binary), runId, `keep-${i}`])
      if (form.exact)
        assert.deepEqual(
          got.args.slice(1),
          argv.map((a) => a.replaceAll(markers[i]!, REDACTED)),
          `form ${i}: ${JSON.stringify(form.args)}`,
        )
      else assert.ok(got.args.slice(3).join(' ').includes(REDACTED), `form ${i} redacted`)
    }

    const leaks = (where: string, text: string) => {
      const found = markers.filter((m) => text.includes(m))
      assert.deepEqual(found, [], `${where} shows ${found.length} secrets`)
    }
    leaks('the API', seen.text)

    // Kafka: every record of every topic, the dead letters included, from the beginning.
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()

    // A dead letter that carries this run: one of its own exec records, published again with a
    // field whose length runs past the end, goes to the dead-letter topic with its bytes.
    // Without it the dead letters would be searched empty.
    const finder = kafka.consumer({ groupId: `redact-find-${runId}` })
    await finder.connect()
    await finder.subscribe({ topics: ['ebbflow.exec.v1'], fromBeginning: true })
    let ours: Buffer | undefined
    await finder.run({
      eachMessage: async ({ message }) => {
        if (!ours && message.value?.includes(runId)) ours = message.value
      },
    })
    const findBy = Date.now() + 30_000
    while (!ours && Date.now() < findBy) await new Promise((r) => setTimeout(r, 200))
    await finder.disconnect()
    assert.ok(ours, 'an exec record of the run in Kafka')
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic: 'ebbflow.exec.v1',
      messages: [
        { value: Buffer.concat([ours, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]) },
      ],
    })
    await producer.disconnect()
    const dlqBy = Date.now() + 60_000
    for (;;) {
      const topicsNow = await admin.listTopics()
      const high = topicsNow.includes('ebbflow.dlq.v1')
        ? (await admin.fetchTopicOffsets('ebbflow.dlq.v1')).reduce((n, p) => n + Number(p.high), 0)
        : 0
      if (high > 0) break
      assert.ok(Date.now() < dlqBy, 'the corrupted record never reached the dead letters')
      await new Promise((r) => setTimeout(r, 250))
    }
    const topics = (await admin.listTopics()).filter((t) => !t.startsWith('__'))
    const offsets = await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)))
    await admin.disconnect()
    const wanted = offsets.reduce(
      (n, parts) => n + parts.reduce((m, p) => m + Number(p.high) - Number(p.low), 0),
      0,
    )
    const consumer = kafka.consumer({ groupId: `redact-${runId}` })
    await consumer.connect()
    await consumer.subscribe({ topics, fromBeginning: true })
    const chunks: Buffer[] = []
    const dlqChunks: Buffer[] = []
    let read = 0
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        read++
        if (message.value) chunks.push(message.value)
        for (const h of Object.values(message.headers ?? {})) if (Buffer.isBuffer(h)) chunks.push(h)
        if (topic === 'ebbflow.dlq.v1' && message.value) dlqChunks.push(message.value)
      },
    })
    const kafkaDeadline = Date.now() + 30_000
    while (read < wanted && Date.now() < kafkaDeadline) await new Promise((r) => setTimeout(r, 200))
    await consumer.disconnect()
    assert.ok(read >= wanted, `read ${read} of ${wanted} Kafka records`)
    const kafkaText = Buffer.concat(chunks).toString('latin1')
    assert.ok(kafkaText.includes(runId), 'the run is in Kafka (uncompressed by the consumer)')
    leaks('Kafka', kafkaText)
    const dlqText = Buffer.concat(dlqChunks).toString('latin1')
    assert.ok(dlqText.includes(runId), 'the run is in the dead letters')
    leaks('the dead letters', dlqText)

    // Stop, then read every table of the store (dead letters included) directly.
    const exited = new Promise((resolve) => up!.once('exit', resolve))
    up.kill('SIGTERM')
    assert.equal(await exited, 0)
    const store = await ChdbStore.open(dataDir)
    try {
      const tables = await store.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = 'ebbflow' AND engine LIKE '%MergeTree%'",
      )
      assert.ok(tables.length > 0)
      let storeText = ''
      for (const { name } of tables) {
        const rows = await store.query<Record<string, unknown>>(`SELECT * FROM ebbflow.\`${name}\``)
        storeText += JSON.stringify(rows)
        // Dead letters keep a record's bytes in base64, where a text search sees no marker.
        for (const r of rows)
          if (typeof r.value_base64 === 'string')
            storeText += Buffer.from(r.value_base64, 'base64').toString('latin1')
      }
      assert.ok(storeText.includes(runId), 'the run is in the store')
      leaks('the store', storeText)
    } finally {
      await store.close()
    }
    leaks('the logs', logs)
  })
})
