// A block whose rows one table takes and another refuses: process_events (first in TABLES)
// stores every record's execs, then tcp_connections refuses one record's address, and the
// ingester narrows the block down by halves under other tokens. Every row the test sent must be
// in every table exactly once (counted by the identities the test gave them), the refused
// record in the dead letters, and a retry of the same block under the same token adds nothing.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'

const logger = createLogger('test', 'silent')
/** Records in the block; the one at BAD has a source address no table can store. */
const RECORDS = 8
const BAD = 5
const EXECS = 3
const TCPS = 2
const NODE = 'node-partial'

const ns = (n: bigint) => Long.fromString(n.toString(), true)

/** Record r: execs with pids 1000+10r+k, connections with sports 2000+10r+k, one traffic row. */
function record(r: number, t0: bigint): InRecord {
  const value = v1.EventBatch.encode({
    node: NODE,
    batchId: `partial-${r}`,
    bootId: 'boot-partial',
    collectorInstanceId: 'instance-partial',
    sequence: r,
    firstTimeNs: ns(t0),
    lastTimeNs: ns(t0 + 10n),
    exec: Array.from({ length: EXECS }, (_, k) => ({
      timeNs: ns(t0 + BigInt(k)),
      task: { pid: 1000 + 10 * r + k, tgid: 1000 + 10 * r + k, comm: 'sh' },
      filename: '/bin/sh',
      args: ['sh', String(k)],
    })),
    tcp: Array.from({ length: TCPS }, (_, k) => ({
      timeNs: ns(t0 + 5n + BigInt(k)),
      kind: 1,
      role: 1,
      ipFamily: 4,
      saddr: r === BAD && k === 1 ? 'not-an-address' : `10.7.0.${r}`,
      daddr: '10.7.1.1',
      sport: 2000 + 10 * r + k,
      dport: 80,
    })),
    traffic: [
      {
        timeNs: ns(t0 + 10n),
        direction: 2,
        protocol: 6,
        ipFamily: 4,
        remoteAddr: '10.7.1.1',
        remotePort: 3000 + r,
        bytes: 100,
        packets: 1,
      },
    ],
  }).finish()
  return {
    topic: TOPICS.net,
    partition: 0,
    offset: String(500 + r),
    key: null,
    value: Buffer.from(value),
  }
}

describe('a table refuses a record after another took the block', { timeout: 120_000 }, () => {
  let tmp: string
  let store: ChdbStore
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-partial-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
  })
  after(async () => {
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('stores every other row once in every table and dead-letters the one record', async () => {
    const t0 = BigInt(Date.now() - 60_000) * 1_000_000n
    const records = Array.from({ length: RECORDS }, (_, r) => record(r, t0))
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger,
      source: 'partial',
    })
    const first = await ingestor.ingestBlock(records, 'partial-block')
    assert.equal(first.stored, RECORDS - 1)
    assert.equal(first.deadLetters, 1)

    /** How often each identity the test sent is in a table. */
    const copies = async (table: string, column: string) => {
      const rows = await store.query<{ id: string; n: string }>(
        `SELECT toString(${column}) AS id, count() AS n FROM ebbflow.${table} WHERE node = '${NODE}' GROUP BY id`,
      )
      return new Map(rows.map((r) => [Number(r.id), Number(r.n)]))
    }
    const expectOnce = (got: Map<number, number>, want: number[], what: string) => {
      const wrong = [...new Set([...got.keys(), ...want])]
        .filter((id) => got.get(id) !== (want.includes(id) ? 1 : undefined))
        .map((id) => `${id}: ${got.get(id) ?? 0}×`)
      assert.deepEqual(wrong, [], `${what}: identities not stored exactly once`)
    }
    const all = Array.from({ length: RECORDS }, (_, r) => r)
    const check = async () => {
      // process_events took the whole block before tcp_connections refused it: the refused
      // record's execs are there too (ClickHouse cannot take an insert back), once.
      expectOnce(
        await copies('process_events', 'pid'),
        all.flatMap((r) => Array.from({ length: EXECS }, (_, k) => 1000 + 10 * r + k)),
        'process_events',
      )
      expectOnce(
        await copies('tcp_connections', 'sport'),
        all
          .filter((r) => r !== BAD)
          .flatMap((r) => Array.from({ length: TCPS }, (_, k) => 2000 + 10 * r + k)),
        'tcp_connections',
      )
      expectOnce(
        await copies('traffic', 'remote_port'),
        all.filter((r) => r !== BAD).map((r) => 3000 + r),
        'traffic',
      )
      const ledger = await store.query<{ sequence: string; n: string }>(
        `SELECT toString(sequence) AS sequence, count() AS n FROM ebbflow.batch_ledger FINAL
         WHERE node = '${NODE}' GROUP BY sequence`,
      )
      expectOnce(
        new Map(ledger.map((r) => [Number(r.sequence), Number(r.n)])),
        all.filter((r) => r !== BAD),
        'batch_ledger',
      )
    }
    await check()
    const letters = await store.query<{ offset: string; reason: string; error: string }>(
      "SELECT offset, reason, error FROM ebbflow.dead_letters WHERE source = 'partial'",
    )
    assert.equal(letters.length, 1, JSON.stringify(letters))
    assert.equal(letters[0]!.offset, String(500 + BAD))
    assert.equal(letters[0]!.reason, 'store_rejected')
    assert.match(letters[0]!.error, /its rows in process_events were stored/)

    // The same block again under the same token (a redelivery after a crash): nothing new.
    const again = await ingestor.ingestBlock(records, 'partial-block')
    assert.equal(again.stored, RECORDS - 1)
    await check()
  })
})
