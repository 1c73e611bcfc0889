// Garbage that decodes: records whose values no kernel and no collector produce (a Metadata
// message read as a batch, sequence 2^64-1, exit code -2^31, signal 2^32-1, duration 2^64-1,
// 2,000 forks of pid 0) go to the dead letters with their reason, on chDB through the real
// Ingestor; the valid record in the same block is stored.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate, type Store } from '@ebbflow/store'

const U64_MAX = Long.fromString('18446744073709551615', true)
const t0 = BigInt(Date.now() - 60_000) * 1_000_000n
const at = (i: number) => Long.fromString((t0 + BigInt(i)).toString(), true)

function batch(id: string, over: Record<string, unknown>): Buffer {
  return Buffer.from(
    v1.EventBatch.encode({
      node: 'node-v',
      batchId: id,
      bootId: 'boot-v',
      firstTimeNs: at(0),
      lastTimeNs: at(0),
      ...over,
    }).finish(),
  )
}

const exit = (fields: Record<string, unknown>) => ({
  exit: [{ timeNs: at(1), task: { pid: 42, tgid: 42, comm: 'x' }, durationNs: at(5), ...fields }],
})

describe('ingester validation (chDB)', () => {
  let tmp: string
  let store: ChdbStore

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-validate-'))
    store = await ChdbStore.open(join(tmp, 'data'))
    await migrate(store)
  })
  after(async () => {
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('dead-letters each out-of-range record with its reason and stores the valid one', async () => {
    const metadata = Buffer.from(
      v1.Metadata.encode({ node: 'node-v', namespace: 'ns', pod: 'p' } as never).finish(),
    )
    const cases: [string, Buffer, RegExp][] = [
      ['metadata', metadata, /./],
      [
        'sequence',
        batch('seq', {
          sequence: U64_MAX,
          exec: [
            {
              timeNs: at(1),
              task: { pid: 7, tgid: 7, comm: 'a' },
              filename: '/bin/a',
              args: ['a'],
            },
          ],
        }),
        /sequence .* out of range/,
      ],
      [
        'exit code',
        batch('code', exit({ exitCode: -(2 ** 31) })),
        /exit code -2147483648 out of range/,
      ],
      ['signal', batch('sig', exit({ signal: 2 ** 32 - 1 })), /signal 4294967295 out of range/],
      ['duration', batch('dur', exit({ durationNs: U64_MAX })), /duration .* out of range/],
      [
        'time 2^64-1',
        batch('time', exit({ timeNs: U64_MAX })),
        /time 18446744073709551615 ns out of range/,
      ],
      [
        // Wire type 7 inside an exec (field 8): the header reads, ClickHouse's parser and protobuf's do not.
        'unparsable event',
        Buffer.concat([batch('wire', {}), Buffer.from([0x42, 0x03, 0x0f, 0x01, 0x02])]),
        /not an ebbflow\.v1\.EventBatch: invalid wire type 7/,
      ],
      [
        'forks of pid 0',
        batch('forks', {
          fork: Array.from({ length: 2000 }, (_, i) => ({ timeNs: at(i), task: {} })),
        }),
        /fork\[0\]: pid 0 out of range.*and \d+ more/,
      ],
    ]
    const valid = batch('good', exit({ exitCode: 3, signal: 9 }))
    const records: InRecord[] = [...cases.map(([, value]) => value), valid].map((value, i) => ({
      topic: TOPICS.exec,
      partition: 0,
      offset: String(i),
      key: null,
      value,
    }))
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger: createLogger('test', 'silent'),
      source: 'validate',
    })
    const result = await ingestor.ingestBlock(records, 'validate-1')
    assert.equal(result.deadLetters, cases.length)
    assert.equal(result.stored, 1)
    const letters = await store.query<{ offset: string; reason: string; error: string }>(
      "SELECT offset, reason, error FROM ebbflow.dead_letters WHERE source = 'validate' ORDER BY toUInt64(offset)",
    )
    assert.deepEqual(
      letters.map((l) => l.offset),
      cases.map((_, i) => String(i)),
    )
    for (const [i, [name, , error]] of cases.entries()) {
      assert.ok(
        ['invalid_event', 'invalid_batch', 'undecodable'].includes(letters[i]!.reason),
        name,
      )
      assert.match(letters[i]!.error, error, name)
    }
    assert.equal(
      letters[0]!.reason === 'invalid_batch' || /no events/.test(letters[0]!.error),
      true,
    )
    const exits = await store.query<{ exit_code: number; signal: number; pid: number }>(
      "SELECT * FROM ebbflow.process_events WHERE node = 'node-v'",
    )
    assert.equal(exits.length, 1, JSON.stringify(exits))
    assert.equal(Number(exits[0]!.exit_code), 3)
  })
  // A block with syscall events (a table one family feeds) is checked inside its first insert;
  // a record that fails any check, in any family, stops that insert before a row is written,
  // and the separate check pass then names it. The bad record here has a valid syscall event
  // and an out-of-range exit: neither of its events may be stored.
  it('checks whole records inside the first insert, and stores none of a failing record', async () => {
    const syscall = (pid: number, nr: number) => ({
      timeNs: at(10 + nr),
      task: { pid, tgid: pid, comm: 's' },
      syscallNr: nr,
      syscall: 'getpgid',
      args: [Long.fromNumber(nr, true)],
    })
    const value = (id: string, over: Record<string, unknown>) =>
      batch(id, { node: 'node-c', ...over } as never)
    const block = (values: Buffer[]) =>
      values.map((v, i) => ({
        topic: TOPICS.syscall,
        partition: 0,
        offset: String(i),
        key: null,
        value: v,
      }))
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger: createLogger('test', 'silent'),
      source: 'checked',
    })
    const rowsOf = async () =>
      (
        await store.query<{ nr: string }>(
          "SELECT toString(args[1]) AS nr FROM ebbflow.syscall_events WHERE node = 'node-c' ORDER BY args[1]",
        )
      ).map((r) => Number(r.nr))

    const valid = await ingestor.ingestBlock(
      block([
        value('c1', { syscall: [syscall(9, 1), syscall(9, 2)] }),
        value('c2', { syscall: [syscall(9, 3)] }),
      ]),
      'checked-1',
    )
    assert.equal(valid.deadLetters, 0)
    assert.equal(valid.rows.syscall_events, 3)
    assert.deepEqual(await rowsOf(), [1, 2, 3])

    const mixed = await ingestor.ingestBlock(
      block([
        value('c3', { syscall: [syscall(9, 4)] }),
        value('c4', { syscall: [syscall(9, 5)], ...exit({ exitCode: 4096 }) }),
        value('c5', { syscall: [syscall(9, 6)] }),
      ]),
      'checked-2',
    )
    assert.equal(mixed.deadLetters, 1)
    assert.equal(mixed.rows.syscall_events, 2)
    assert.deepEqual(await rowsOf(), [1, 2, 3, 4, 6])
    const letters = await store.query<{ offset: string; error: string }>(
      "SELECT offset, error FROM ebbflow.dead_letters WHERE source = 'checked'",
    )
    assert.deepEqual(
      letters.map((l) => l.offset),
      ['1'],
    )
    assert.match(letters[0]!.error, /exit code 4096 out of range/)

    // The same block again under its token: nothing more.
    await ingestor.ingestBlock(
      block([
        value('c1', { syscall: [syscall(9, 1), syscall(9, 2)] }),
        value('c2', { syscall: [syscall(9, 3)] }),
      ]),
      'checked-1',
    )
    assert.deepEqual(await rowsOf(), [1, 2, 3, 4, 6])
  })

  // process_events is fed by three families (exec, exit, fork): its checked insert reads the
  // block once and unnests the three into one ARRAY JOIN. Every row is the test's own event,
  // each family's columns in place and the others at their defaults; a record with one bad
  // fork among valid events stores none of its rows, and a redelivery adds nothing: no row and
  // no dead letter.
  it('stores exec, exit and fork of one block in one checked insert, each row as sent', async () => {
    const task = (pid: number) => ({ pid, tgid: pid, ppid: 1, uid: 1000, comm: `c${pid}` })
    const value = (id: string, pid: number, forkPid: number) =>
      batch(id, {
        node: 'node-p',
        exec: [
          {
            timeNs: at(100 + pid),
            task: task(pid),
            filename: `/bin/p${pid}`,
            args: ['a', `${pid}`],
          },
        ],
        exit: [
          {
            timeNs: at(200 + pid),
            task: task(pid),
            exitCode: pid % 7,
            signal: 0,
            durationNs: at(0)
              .subtract(at(0))
              .add(pid * 1000),
          },
        ],
        fork: [{ timeNs: at(300 + pid), task: task(pid), childPid: forkPid, childTgid: forkPid }],
      } as never)
    const block = (values: Buffer[]) =>
      values.map((v, i) => ({
        topic: TOPICS.exec,
        partition: 0,
        offset: String(i),
        key: null,
        value: v,
      }))
    // The store as the ingester sees it, counting separate check passes: a valid block needs none.
    let checkPasses = 0
    const counting: Store = {
      exec: (sql) => store.exec(sql),
      query: (sql, params) => store.query(sql, params),
      insert: (table, rows, options) => store.insert(table, rows, options),
      close: () => Promise.resolve(),
      batchInput: async (body) => {
        const input = await store.batchInput(body)
        return {
          ...input,
          query: (build) => {
            checkPasses++
            return input.query(build)
          },
        }
      },
    }
    const ingestor = new Ingestor({
      store: counting,
      deadLetters: new StoreDeadLetters(store),
      metrics: new IngestMetrics(),
      logger: createLogger('test', 'silent'),
      source: 'process',
    })
    const valid = block([value('p1', 11, 111), value('p3', 13, 131)])
    const r = await ingestor.ingestBlock(valid, 'process-1')
    assert.equal(r.deadLetters, 0)
    assert.equal(r.rows.process_events, 6)
    assert.equal(checkPasses, 0)
    // p2's fork has child pid 0: no kernel forks pid 0, so the whole record is a dead letter;
    // p4 beside it is stored.
    const bad = await ingestor.ingestBlock(
      block([value('p2', 12, 0), value('p4', 14, 141)]),
      'process-2',
    )
    assert.equal(bad.deadLetters, 1)
    assert.equal(bad.rows.process_events, 3)
    const letters = await store.query<{ offset: string; error: string }>(
      "SELECT offset, error FROM ebbflow.dead_letters WHERE source = 'process'",
    )
    assert.deepEqual(
      letters.map((l) => l.offset),
      ['0'],
    )
    assert.match(letters[0]!.error, /fork\[0\]: child pid 0 out of range/)
    // Both blocks again, as after a crash before their offsets were committed: no row more, and
    // no second dead letter for the record refused the first time.
    await ingestor.ingestBlock(valid, 'process-1')
    const again = await ingestor.ingestBlock(
      block([value('p2', 12, 0), value('p4', 14, 141)]),
      'process-2',
    )
    assert.equal(again.deadLetters, 1)
    const lettersAgain = await store.query<{ offset: string }>(
      "SELECT offset FROM ebbflow.dead_letters WHERE source = 'process'",
    )
    assert.deepEqual(
      lettersAgain.map((l) => l.offset),
      ['0'],
    )
    const rows = await store.query<Record<string, string | number | string[]>>(
      "SELECT kind, pid, comm, filename, args, exit_code, duration_ns, child_pid FROM ebbflow.process_events WHERE node = 'node-p' ORDER BY time",
    )
    const byKind = (k: string) => rows.filter((x) => x.kind === k).map((x) => Number(x.pid))
    assert.deepEqual(byKind('exec'), [11, 13, 14])
    assert.deepEqual(byKind('exit'), [11, 13, 14])
    assert.deepEqual(byKind('fork'), [11, 13, 14])
    for (const pid of [11, 13, 14]) {
      const row = rows.find((x) => x.kind === 'exec' && Number(x.pid) === pid)!
      assert.equal(row.filename, `/bin/p${pid}`)
      assert.deepEqual(row.args, ['a', `${pid}`])
      assert.equal(row.comm, `c${pid}`)
      assert.equal(Number(row.exit_code), 0)
      assert.equal(Number(row.child_pid), 0)
    }
    for (const pid of [11, 13, 14]) {
      const ex = rows.find((x) => x.kind === 'exit' && Number(x.pid) === pid)!
      assert.equal(Number(ex.exit_code), pid % 7)
      assert.equal(String(ex.duration_ns), String(pid * 1000))
      assert.equal(ex.filename, '')
      const fk = rows.find((x) => x.kind === 'fork' && Number(x.pid) === pid)!
      assert.equal(Number(fk.child_pid), pid * 10 + 1)
      assert.equal(String(fk.duration_ns), '0')
    }
  })
})
