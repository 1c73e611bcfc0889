// The proto is the one definition of what an event carries. These tests walk every field of
// every event message (Metadata and Task included) through reflection, fill each with a
// distinct value, and follow it: protobuf → decoded event → protobuf again (the wire layer),
// and the whole way (collector publisher → real Kafka or the in-process queue → ingester →
// chDB → GraphQL), where every field must have its column in the stored row, holding a value. A field added to the proto that some stage
// drops fails here without anyone listing it; the only hand-written tables say where a field
// takes another name, and which messages GraphQL serves only as aggregates (with the reason).
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildSchema, createApi } from '@ebbflow/api'
import { InProcessTransport, KafkaTransport, Publisher, type WallClock } from '@ebbflow/collector'
import { createLogger } from '@ebbflow/common'
import { batchEvents, decodeEventBatch, TOPICS, toWire } from '@ebbflow/common/wire'
import {
  IngestMetrics,
  Ingestor,
  InProcessIngester,
  KafkaIngester,
  StoreDeadLetters,
} from '@ebbflow/ingester'
import { Long, v1, v1Types } from '@ebbflow/proto'
import { ChdbStore, migrate, type Store } from '@ebbflow/store'
import { getNamedType, isObjectType } from 'graphql'
import {
  at,
  EVENT_MESSAGES,
  fullMessage,
  leafFields,
  type MessageName,
} from '../support/full-records.ts'
import { brokerUnavailable, startBroker, type TestBroker } from '../support/kafka-broker.ts'
import { clockOf, onClock } from '../support/wire-read.ts'

const logger = createLogger('test', 'silent')
type Obj = Record<string, unknown>

/** One EventBatch with one fully-filled record of every event message. */
function fullBatch(baseNs: bigint, seedStart: number) {
  const seed = { n: seedStart }
  const wire: Obj = {
    node: `node-${seedStart}`,
    collectorInstanceId: randomUUID(),
    bootId: `boot-${seedStart}`,
    sequence: 1,
    batchId: `batch-${seedStart}`,
  }
  for (const [list, msg] of Object.entries(EVENT_MESSAGES))
    wire[list] = [fullMessage(v1Types[msg], seed, baseNs)]
  // The exit is served on its exec (matched by node, boot and tgid): it is the same process.
  const exec = (wire.exec as Obj[])[0]!
  const exit = (wire.exit as Obj[])[0]!
  exit.task = exec.task
  exit.meta = exec.meta
  return wire
}

const toObject = (msg: MessageName, o: Obj) =>
  v1Types[msg].toObject(v1Types[msg].fromObject(o), { longs: String, enums: Number })

/** Where a row's column is not the field's own snake_case name. */
const ROW_COLUMN: Record<string, string[]> = {
  timeNs: ['time'],
  'TcpEvent.kind': ['event'],
  'SyscallEvent.strings': ['string_args', 'string_values'],
  'Drops.count': ['value'],
}
/** Fields a table keeps on purpose in another form. */
const ROW_NOT_STORED: Record<string, string> = {
  // A drop is counted per node: no pod, container or session causes it.
  'Drops.meta': 'collector_stats keeps the node of a drop count only',
  // The gap accounting reads it per batch, beside the sequence it explains.
  'Drops.batches': 'the batch ledger (batch_ledger.dropped_batches) keeps it, per batch',
}
const TABLE: Record<MessageName, string> = {
  Exec: 'process_events',
  Exit: 'process_events',
  Fork: 'process_events',
  TcpEvent: 'tcp_connections',
  TrafficCounter: 'traffic',
  SyscallEvent: 'syscall_events',
  SyscallCount: 'syscall_counts',
  Drops: 'collector_stats',
  FileAccess: 'file_accesses',
} as Record<MessageName, string>

/** A column's value as ClickHouse answers it in JSON, where 64-bit numbers, times and
 * addresses are text: a zero of each of those is the default a lost field leaves. */
const isStoredDefault = (v: unknown) =>
  isDefault(v) ||
  (typeof v === 'string' &&
    (/^0(\.0+)?$/.test(v) ||
      /^1970-01-01 00:00:00(\.0+)?$/.test(v) ||
      ['::', '0.0.0.0', '::ffff:0.0.0.0'].includes(v)))

const isDefault = (v: unknown) =>
  v === undefined ||
  v === null ||
  v === '' ||
  v === 0 ||
  v === false ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && Object.keys(v as object).length === 0)

describe('one definition: every proto field through the wire layer', () => {
  const baseNs = BigInt(Date.now()) * 1_000_000n
  const wire = fullBatch(baseNs, 0)
  const decoded = batchEvents(decodeEventBatch(v1.EventBatch.encode(wire).finish()))
  const clock = clockOf(decoded)
  const events = decoded.map((e) => onClock(e, clock))

  for (const [list, msg] of Object.entries(EVENT_MESSAGES) as [string, MessageName][]) {
    const kind = list === 'syscallCount' ? 'syscall_count' : list
    const original = (wire[list] as Obj[])[0]!
    const event = events.find((e) => e.kind === kind)!

    it(`${msg}: decoded and encoded again, every field is what was sent`, () => {
      const again = v1Types[msg].encode(toWire(event, clock) as Obj).finish()
      assert.deepEqual(
        toObject(msg, v1Types[msg].decode(again) as unknown as Obj),
        toObject(msg, original),
      )
    })
  }
})

/** GraphQL field of each served leaf, where it is not the proto's camelCase name. */
const GRAPHQL_FIELD: Record<string, string> = {
  'Exec.timeNs': 'time',
  'Exit.timeNs': 'exitTime',
  'TcpEvent.timeNs': 'time',
  'TcpEvent.kind': 'event',
  'TcpEvent.ipFamily': 'ipVersion',
  'TcpEvent.saddr': 'sourceAddress',
  'TcpEvent.daddr': 'destinationAddress',
  'TcpEvent.sport': 'sourcePort',
  'TcpEvent.dport': 'destinationPort',
}
/** Messages (or parts) GraphQL serves only in another shape, with the reason. */
const GRAPHQL_NOT_SERVED: Record<string, string> = {
  'Exit.task': 'an exit is its exec’s process: served on ExecEvent with the exec’s task',
  'Exit.meta': 'likewise, the exec’s metadata',
  Fork: 'forks are stored for process trees; no root field lists them yet',
  TrafficCounter: 'served summed per step (trafficSeries) and per edge (serviceMap)',
  SyscallCount: 'served summed per syscall (syscallCounts, seccompProfile)',
  SyscallEvent: 'traced syscalls are stored; no root field lists them yet',
  Drops: 'served summed per node, family and reason (collectorHealth)',
  FileAccess: 'served summed per path and access (fileAccess, landlockRuleset)',
}
const ROOT: Partial<Record<MessageName, { type: string; root: string; args: string }>> = {
  Exec: { type: 'ExecEvent', root: 'execEvents', args: '' },
  Exit: { type: 'ExecEvent', root: 'execEvents', args: '' },
  TcpEvent: { type: 'TcpConnection', root: 'connections', args: '' },
}

/** The value GraphQL shows for a proto value (times as RFC 3339 with nanoseconds, enums by name). */
function shown(msg: MessageName, field: string, v: unknown): unknown {
  if (field === 'timeNs') {
    const ns = BigInt(String(v))
    const iso = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)
    return `${iso}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`
  }
  if (msg === 'TcpEvent' && field === 'kind')
    return v1Types.TcpEvent.lookupEnum('Kind').valuesById[v as number]!.slice(5).toLowerCase()
  if (msg === 'TcpEvent' && field === 'role')
    return v1Types.TcpEvent.lookupEnum('Role').valuesById[v as number]!.slice(5).toLowerCase()
  if (Long.isLong(v)) return (v as Long).toString()
  if (Array.isArray(v) || (v && typeof v === 'object')) return v
  return v
}

/** A selection of every field of a GraphQL type, nested objects included (from the schema). */
function selectionOf(type: string): string {
  const t = buildSchema().getType(type)
  assert.ok(t && isObjectType(t), `${type} is an object type of the API`)
  const parts = Object.values(t.getFields()).map((f) => {
    const inner = getNamedType(f.type)
    return isObjectType(inner) ? `${f.name} ${selectionOf(inner.name)}` : f.name
  })
  return `{ ${parts.join(' ')} }`
}

/** Every served leaf of `wire` compared with the GraphQL answer; returns what differs. */
async function compareWithApi(post: (q: string) => Promise<Obj>, wire: Obj): Promise<string[]> {
  const problems: string[] = []
  const answers = new Map<string, Obj>()
  for (const [list, msg] of Object.entries(EVENT_MESSAGES) as [string, MessageName][]) {
    if (GRAPHQL_NOT_SERVED[msg]) continue
    const root = ROOT[msg]
    if (!root) {
      problems.push(`${msg}: no root field serves it and no reason is given`)
      continue
    }
    const original = (wire[list] as Obj[])[0]!
    // Each record names its own node (every field of it is distinct): query by that.
    const recordNode = (original.meta as Obj).node as string
    const key = `${root.root}/${recordNode}`
    let node = answers.get(key)
    if (!node) {
      const selection = selectionOf(root.type)
      const data = (await post(
        `{ ${root.root}(filter: { node: ${JSON.stringify(recordNode)} }, first: 10) { edges { node ${selection} } } }`,
      )) as Record<string, { edges: { node: Obj }[] }>
      const edges = data[root.root]!.edges
      if (edges.length !== 1) {
        problems.push(`${key}: ${edges.length} edges, expected the one record sent`)
        continue
      }
      node = edges[0]!.node
      answers.set(key, node)
    }
    for (const leaf of leafFields(msg)) {
      const rel = leaf.path.slice(msg.length + 1)
      if (Object.keys(GRAPHQL_NOT_SERVED).some((p) => leaf.path.startsWith(`${p}.`))) continue
      // Task fields sit on the event itself; Metadata under `meta`.
      const gqlPath =
        GRAPHQL_FIELD[leaf.path] ??
        (rel.startsWith('task.') ? rel.slice(5) : rel.startsWith('meta.') ? rel : leaf.field)
      const got = at(node, gqlPath)
      const want = shown(msg, leaf.field, at(original, rel))
      const norm = (v: unknown) => (typeof v === 'number' ? String(v) : v)
      const wantValue = Array.isArray(want) ? want.map(String) : norm(want)
      const gotValue = Array.isArray(got) ? got.map(String) : norm(got)
      if (JSON.stringify(gotValue) !== JSON.stringify(wantValue))
        problems.push(
          `${leaf.path} → ${gqlPath}: got ${JSON.stringify(got)}, sent ${JSON.stringify(want)}`,
        )
    }
  }
  return problems
}

describe('one definition: every proto field the whole way to GraphQL', { timeout: 120_000 }, () => {
  let tmp: string
  let store: Store
  let broker: TestBroker | undefined
  const skipKafka = brokerUnavailable()
  let post: (q: string) => Promise<Obj>
  /** The batch the in-process run stored. */
  let stored: Obj | undefined

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-onedef-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    const api = createApi({ store, tokens: { 'token-all-0123456789': ['*'] }, logger })
    post = async (query) => {
      const res = await api.fetch('http://127.0.0.1/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer token-all-0123456789',
        },
        body: JSON.stringify({ query }),
      })
      const body = (await res.json()) as { data?: Obj; errors?: unknown }
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      return body.data!
    }
    if (!skipKafka) broker = await startBroker()
  })

  after(async () => {
    await store?.close()
    await broker?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  /** The batch's events, decoded, published again by a real collector publisher. */
  function republish(wire: Obj, publisher: (clock: WallClock) => Publisher): Promise<unknown> {
    const decoded = batchEvents(decodeEventBatch(v1.EventBatch.encode(wire).finish()))
    const clock = clockOf(decoded)
    const p = publisher(clock)
    p.publish(decoded.map((e) => onClock(e, clock)))
    return p.close()
  }

  const publisherOptions = (node: string, clock: WallClock) => ({
    node,
    clock,
    bootNow: () => 1_000_000_000,
    queueBudgetBytes: 1 << 24,
    batchMaxEvents: 100,
    batchMaxBytes: 1 << 20,
    lingerMs: 5,
  })

  /** Until every record of the batch has its row (each names its own node). */
  async function waitForRows(wire: Obj): Promise<void> {
    const nodes = Object.keys(EVENT_MESSAGES).map(
      (list) => ((wire[list] as Obj[])[0]!.meta as Obj).node as string,
    )
    const deadline = Date.now() + 30_000
    for (;;) {
      const [r] = await store.query<{ n: string }>(
        `SELECT (SELECT count() FROM ebbflow.process_events WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.tcp_connections WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.traffic WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.syscall_events WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.syscall_counts WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.file_accesses WHERE has({nodes:Array(String)}, node))
              + (SELECT count() FROM ebbflow.collector_stats
                 WHERE metric = 'drops' AND has({nodes:Array(String)}, node)) AS n`,
        { nodes },
      )
      if (Number(r!.n) === nodes.length) return
      if (Date.now() > deadline) throw new Error(`rows of the batch: ${r!.n} of ${nodes.length}`)
      await new Promise((res) => setTimeout(res, 100))
    }
  }

  it('in-process queue → ingester → chDB → GraphQL', async () => {
    const wire = fullBatch(BigInt(Date.now() - 60_000) * 1_000_000n, 1000)
    const node = ((wire.exec as Obj[])[0]!.meta as Obj).node as string
    const transport = new InProcessTransport()
    const ingester = new InProcessIngester(
      new Ingestor({
        store,
        deadLetters: new StoreDeadLetters(store),
        metrics: new IngestMetrics(),
        logger,
        source: 'in-process',
      }),
      logger,
      { maxWaitMs: 20 },
    )
    const consuming = ingester.consume(transport.consume())
    await republish(wire, (clock) => new Publisher(transport, publisherOptions(node, clock)))
    await transport.close()
    await consuming
    await waitForRows(wire)
    assert.deepEqual(await compareWithApi(post, wire), [])
    stored = wire
  })

  // Not only what GraphQL serves: every field of every message has its column in the row the
  // ingester stored (the rows of the in-process run above, read back with SQL).
  for (const [list, msg] of Object.entries(EVENT_MESSAGES) as [string, MessageName][])
    it(`${msg}: every field has its column in ${TABLE[msg]}, holding a value, as stored`, async () => {
      assert.ok(stored, 'the in-process run stored its batch')
      const original = (stored[list] as Obj[])[0]!
      const where =
        msg === 'Drops'
          ? "metric = 'drops'"
          : TABLE[msg] === 'process_events'
            ? `kind = '${list}'`
            : '1'
      const rows = await store.query<Obj>(
        `SELECT * FROM ebbflow.${TABLE[msg]} WHERE node = {node:String} AND ${where}`,
        { node: (original.meta as Obj).node as string },
      )
      assert.equal(rows.length, 1, `${TABLE[msg]} rows of the ${msg} sent`)
      const row = rows[0]!
      const missing: string[] = []
      for (const leaf of leafFields(msg)) {
        if (
          Object.keys(ROW_NOT_STORED).some((p) => leaf.path === p || leaf.path.startsWith(`${p}.`))
        )
          continue
        const columns = ROW_COLUMN[leaf.path] ?? ROW_COLUMN[leaf.field] ?? [leaf.column]
        for (const c of columns)
          if (!(c in row) || isStoredDefault(row[c])) missing.push(`${leaf.path} → ${c}`)
      }
      assert.deepEqual(missing, [], 'fields that did not reach a column')
    })

  it('Kafka publisher → real broker → ingester → chDB → GraphQL', { skip: skipKafka }, async () => {
    const wire = fullBatch(BigInt(Date.now() - 50_000) * 1_000_000n, 2000)
    const node = ((wire.exec as Obj[])[0]!.meta as Obj).node as string
    const brokers = [broker!.bootstrap]
    const consumer = new KafkaIngester(
      { brokers, groupId: `g-${randomUUID()}`, topics: Object.values(TOPICS), maxWaitMs: 100 },
      new Ingestor({
        store,
        deadLetters: new StoreDeadLetters(store),
        metrics: new IngestMetrics(),
        logger,
        source: 'kafka',
      }),
      new IngestMetrics(),
      logger,
    )
    await consumer.start()
    try {
      await republish(
        wire,
        (clock) => new Publisher(new KafkaTransport({ brokers }), publisherOptions(node, clock)),
      )
      await waitForRows(wire)
    } finally {
      await consumer.stop()
    }
    assert.deepEqual(await compareWithApi(post, wire), [])
  })
})
