// Schema evolution through the ingester into the store (chDB), both directions:
// - a newer writer: ebbflow.v1 with fields added to every message (and a new event list on
//   EventBatch), as a later collector would send; the v1 ingester must store every batch, with
//   no dead letter, and store the same rows as for the batch without those fields;
// - an older writer: ebbflow.v1 without the fields added last (the ones a collector released
//   before them never sends); stored, with those columns at their defaults;
// - and a newer reader: v1's own records decoded with the newer schema keep every v1 value.
// The newer and older schemas are the current .proto changed through reflection, not a copy of
// its text: a copy would drift from the .proto as it grows, and the test would stop testing it.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import { loadReflectionRoot, v1Types } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import protobuf from 'protobufjs'
import { EVENT_MESSAGES, fullMessage, type MessageName } from '../support/full-records.ts'

type Obj = Record<string, unknown>
const TABLES = [
  'process_events',
  'tcp_connections',
  'traffic',
  'syscall_events',
  'syscall_counts',
  'collector_stats',
]

/** Field numbers far above any v1 field, so they never collide with one added later. */
const ADDED_ID = 9000

/** v1 with an added field of each wire type in every message, and a new event list. */
function newerRoot(): protobuf.Root {
  const root = loadReflectionRoot()
  const pkg = root.lookup('ebbflow.v1') as protobuf.Namespace
  const added = [
    ['addedText', 'string'],
    ['addedCount', 'uint64'],
    ['addedFlag', 'bool'],
    ['addedRatio', 'double'],
  ] as const
  for (const name of [...Object.values(EVENT_MESSAGES), 'Task', 'Metadata', 'EventBatch']) {
    const type = pkg.lookupType(name)
    added.forEach(([field, t], i) => {
      type.add(new protobuf.Field(field, ADDED_ID + i, t))
    })
    type.add(new protobuf.Field('addedTags', ADDED_ID + 10, 'string', 'repeated'))
  }
  const fileEvent = new protobuf.Type('SandboxEvent')
    .add(new protobuf.Field('timeNs', 1, 'uint64'))
    .add(new protobuf.Field('path', 2, 'string'))
  pkg.add(fileEvent)
  pkg
    .lookupType('EventBatch')
    .add(new protobuf.Field('sandbox', ADDED_ID + 20, 'SandboxEvent', 'repeated'))
  root.resolveAll()
  return root
}

/** v1 as a collector released before them wrote it: the fields added last are missing. */
const RECENT_FIELDS: Record<string, string[]> = {
  Metadata: ['session', 'unresolved', 'systemdUnit', 'functionRevision'],
  Exec: ['seenAtStart'],
}
function olderRoot(): protobuf.Root {
  const root = loadReflectionRoot()
  for (const [msg, fields] of Object.entries(RECENT_FIELDS)) {
    const type = root.lookupType(`ebbflow.v1.${msg}`)
    for (const f of fields) {
      const field = type.fields[f]
      assert.ok(field, `${msg}.${f} is not in the .proto any more: update RECENT_FIELDS`)
      type.remove(field)
    }
  }
  root.resolveAll()
  return root
}

/** One EventBatch of `root`, every field of every event message filled with a distinct value. */
function fullBatch(root: protobuf.Root, node: string, baseNs: bigint): Obj {
  const seed = { n: 0 }
  const type = (name: string) => root.lookupType(`ebbflow.v1.${name}`)
  const wire: Obj = { node, bootId: `boot-${node}`, sequence: 1, batchId: `batch-${node}` }
  for (const [list, msg] of Object.entries(EVENT_MESSAGES))
    wire[list] = [fullMessage(type(msg), seed, baseNs)]
  const exec = (wire.exec as Obj[])[0]!
  const exit = (wire.exit as Obj[])[0]!
  exit.task = exec.task
  exit.meta = exec.meta
  return wire
}

/** The batch as the newer writer sends it: the same v1 values, plus a value in every added field. */
function withAddedFields(wire: Obj): Obj {
  const out = structuredClone(wire)
  let n = 0
  const add = (o: Obj) => {
    n++
    Object.assign(o, {
      addedText: `added#${n}`,
      addedCount: 1_000_000 + n,
      addedFlag: true,
      addedRatio: n + 0.5,
      addedTags: [`tag#${n}`, `tag#${n + 1}`],
    })
  }
  add(out)
  for (const list of Object.keys(EVENT_MESSAGES))
    for (const e of out[list] as Obj[]) {
      add(e)
      if (e.task) add(e.task as Obj)
      if (e.meta) add(e.meta as Obj)
    }
  // Events of a family this reader does not know.
  out.sandbox = [{ timeNs: (out.exec as Obj[])[0]!.timeNs, path: '/etc/added-family' }]
  return out
}

function encode(root: protobuf.Root, wire: Obj): Buffer {
  const batch = root.lookupType('ebbflow.v1.EventBatch')
  return Buffer.from(batch.encode(batch.fromObject(wire)).finish())
}

describe('schema evolution through the ingester (chDB)', { timeout: 120_000 }, () => {
  let tmp: string
  let store: ChdbStore
  let ingestor: Ingestor
  const baseNs = BigInt(Date.now() - 60_000) * 1_000_000n
  let offset = 0

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-evolution-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
    ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger: createLogger('test', 'silent'),
      source: 'evolution',
    })
  })
  after(async () => {
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  async function ingest(value: Buffer) {
    const record: InRecord = {
      topic: TOPICS.exec,
      partition: 0,
      offset: String(offset++),
      key: null,
      value,
    }
    return ingestor.ingestBlock([record], `evolution-${offset}`)
  }

  /** Every row a batch left (found by its boot id), table by table, without what names the batch. */
  async function rowsOf(node: string): Promise<Record<string, Obj[]>> {
    const out: Record<string, Obj[]> = {}
    for (const t of TABLES) {
      const rows = await store.query<Obj>(
        `SELECT * FROM ebbflow.${t} WHERE boot_id = {boot:String} ORDER BY toString(tuple(*))`,
        { boot: `boot-${node}` },
      )
      out[t] = rows
        .filter((r) => r.metric !== 'ingest_lag_ms') // the ingester's clock, not the batch's
        .map(({ boot_id: _b, ...rest }) => rest)
    }
    return out
  }

  async function deadLetters(): Promise<Obj[]> {
    return store.query<Obj>(
      "SELECT reason, error FROM ebbflow.dead_letters WHERE source = 'evolution'",
    )
  }

  it('stores a newer writer’s batch with no dead letter, the same rows as without the added fields', async () => {
    const v1Root = loadReflectionRoot()
    const plain = fullBatch(v1Root, 'node-newer', baseNs)
    const withAdded = withAddedFields(plain)
    const bytes = encode(newerRoot(), withAdded)
    // The added fields are on the wire: the v1 decoder must skip them, not lose the record.
    assert.ok(bytes.length > encode(v1Root, plain).length + 500)
    const result = await ingest(bytes)
    assert.deepEqual(await deadLetters(), [])
    assert.equal(result.stored, 1)

    const twin = await ingest(encode(v1Root, { ...plain, bootId: 'boot-node-v1', batchId: 'v1' }))
    assert.equal(twin.stored, 1)
    const [got, want] = [await rowsOf('node-newer'), await rowsOf('node-v1')]
    for (const t of TABLES) assert.deepEqual(got[t], want[t], `${t}: rows differ`)

    // Known fields hold what the writer sent (spot checks against the written batch itself).
    const exec = (withAdded.exec as Obj[])[0]!
    const task = exec.task as Obj
    const meta = exec.meta as Obj
    const [row] = got.process_events!.filter((r) => r.kind === 'exec')
    assert.ok(row, 'no exec row')
    assert.equal(Number(row.pid), task.pid)
    assert.equal(row.comm, task.comm)
    assert.equal(row.filename, exec.filename)
    assert.deepEqual(row.args, exec.args)
    assert.equal(row.namespace, meta.namespace)
    assert.equal(row.pod, meta.pod)
    assert.equal(row.session, meta.session)
    const tcp = (withAdded.tcp as Obj[])[0]!
    assert.equal(Number(got.tcp_connections![0]!.dport), tcp.dport)
    assert.equal(got.tcp_connections![0]!.comm, tcp.comm)
  })

  it('stores an older writer’s batch with no dead letter, the missing fields at their defaults', async () => {
    const older = olderRoot()
    const wire = fullBatch(older, 'node-older', baseNs)
    const result = await ingest(encode(older, wire))
    assert.deepEqual(await deadLetters(), [])
    assert.equal(result.stored, 1)
    const rows = await rowsOf('node-older')
    const [exec] = rows.process_events!.filter((r) => r.kind === 'exec')
    assert.ok(exec, 'no exec row')
    assert.equal(exec.session, '')
    assert.equal(exec.systemd_unit, '')
    assert.equal(exec.seen_at_start, false)
    assert.equal(exec.filename, (wire.exec as Obj[])[0]!.filename)
    assert.equal(rows.tcp_connections!.length, 1)
  })

  it('dead-letters a newer writer’s new enum value with its place, instead of storing a placeholder', async () => {
    const newer = newerRoot()
    newer.lookupEnum('ebbflow.v1.TcpEvent.Kind').add('KIND_RESET', 99)
    const wire = fullBatch(loadReflectionRoot(), 'node-enum', baseNs)
    ;(wire.tcp as Obj[])[0]!.kind = 99
    const result = await ingest(encode(newer, wire))
    assert.equal(result.deadLetters, 1)
    const letters = await deadLetters()
    assert.equal(letters.length, 1)
    assert.equal(letters[0]!.reason, 'invalid_event')
    assert.match(String(letters[0]!.error), /tcp\[0\]: kind = 99: not a value this reader knows/)
    const rows = await rowsOf('node-enum')
    assert.equal(rows.tcp_connections!.length, 0, 'a connection stored under a kind it never had')
  })

  it('a newer reader decodes the v1 writer’s records with every v1 value', () => {
    const newer = newerRoot()
    const wire = fullBatch(loadReflectionRoot(), 'node-read', baseNs)
    const bytes = encode(loadReflectionRoot(), wire)
    const read = newer.lookupType('ebbflow.v1.EventBatch').decode(bytes) as unknown as Obj
    const asV1 = v1Types.EventBatch.toObject(
      v1Types.EventBatch.decode(v1Types.EventBatch.encode(read as never).finish()),
      { longs: String, enums: Number },
    )
    const sent = v1Types.EventBatch.toObject(v1Types.EventBatch.fromObject(wire), {
      longs: String,
      enums: Number,
    })
    assert.deepEqual(asV1, sent)
    const exec = (read.exec as Obj[])[0]!
    assert.equal(exec.addedText, '', 'an added field the v1 writer never sent')
    assert.deepEqual(read.sandbox, [])
    for (const msg of Object.values(EVENT_MESSAGES) as MessageName[])
      assert.ok(newer.lookupType(`ebbflow.v1.${msg}`).fields.addedText)
  })
})
