// A store that cannot write is not blamed on the records: the chDB folder is made read-only
// (a read-only bind mount over it: root ignores file modes) in the middle of a run; the
// block in flight is refused as retriable (the ingester pauses and retries, committing
// nothing), never bisected into dead letters. Once the folder is writable again, the retried
// block stores every exec, and the dead letters stay empty.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { TOPICS } from '@ebbflow/common/wire'
import { IngestMetrics, Ingestor, type InRecord, StoreDeadLetters } from '@ebbflow/ingester'
import { Long, v1 } from '@ebbflow/proto'
import { ChdbStore, migrate } from '@ebbflow/store'
import { isRoot } from '../support/capture.ts'

const t0 = BigInt(Date.now() - 60_000) * 1_000_000n
const at = (i: number) => Long.fromString((t0 + BigInt(i)).toString(), true)

/** Records of `per` execs each, pids from `first`, as a collector writes them. */
function records(first: number, count: number, per: number, offset0: number): InRecord[] {
  return Array.from({ length: count }, (_, r) => ({
    topic: TOPICS.exec,
    partition: 0,
    offset: String(offset0 + r),
    key: null,
    value: Buffer.from(
      v1.EventBatch.encode({
        node: 'node-ro',
        bootId: 'boot-ro',
        batchId: `ro-${offset0 + r}`,
        sequence: offset0 + r,
        firstTimeNs: at(0),
        lastTimeNs: at(per),
        exec: Array.from({ length: per }, (_, i) => {
          const pid = first + r * per + i
          return {
            timeNs: at(i),
            task: { pid, tgid: pid, comm: 'ro' },
            filename: '/bin/ro',
            args: ['ro', String(pid)],
          }
        }),
      }).finish(),
    ),
  }))
}

describe('store that cannot write (read-only chDB folder)', {
  skip: isRoot() ? false : 'needs root for a read-only bind mount',
  timeout: 120_000,
}, () => {
  let tmp: string
  let dataDir: string
  let store: ChdbStore
  let mounted = false

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-ro-'))
    dataDir = join(tmp, 'data')
    mkdirSync(dataDir)
    store = await ChdbStore.open(dataDir)
    await migrate(store)
  })
  after(async () => {
    if (mounted) execFileSync('umount', [dataDir])
    await store?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('pauses and retries without dead letters, and stores every exec once writable', async () => {
    const metrics = new IngestMetrics()
    const ingestor = new Ingestor({
      store,
      deadLetters: new StoreDeadLetters(store),
      metrics,
      logger: createLogger('test', 'silent'),
      source: 'readonly',
    })
    // 40 execs stored before, 80 in flight when the folder turns read-only: 120 in all.
    const first = await ingestor.ingestBlock(records(1000, 4, 10, 0), 'ro-block-0')
    assert.equal(first.stored, 4)

    execFileSync('mount', ['--bind', dataDir, dataDir])
    mounted = true
    execFileSync('mount', ['-o', 'remount,bind,ro', dataDir])
    const block = records(1040, 8, 10, 4)
    for (let attempt = 0; attempt < 3; attempt++)
      await assert.rejects(
        ingestor.ingestBlock(block, 'ro-block-1'),
        (err: Error & { retriable?: boolean }) => {
          assert.equal(err.retriable, true, err.message)
          assert.match(err.message, /Read-only file system/)
          return true
        },
      )
    const failures = await metrics.registry.getSingleMetricAsString(
      'ebbflow_ingest_insert_failures_total',
    )
    assert.match(failures, /retriable="true"\} 3/)
    assert.doesNotMatch(failures, /retriable="false"\} [1-9]/, 'nothing was bisected')

    execFileSync('umount', [dataDir])
    mounted = false
    const retried = await ingestor.ingestBlock(block, 'ro-block-1')
    assert.equal(retried.stored, 8)
    assert.equal(retried.deadLetters, 0)

    const pids = await store.query<{ pid: number }>(
      "SELECT pid FROM ebbflow.process_events WHERE node = 'node-ro' AND kind = 'exec' ORDER BY pid",
    )
    assert.deepEqual(
      pids.map((r) => Number(r.pid)),
      Array.from({ length: 120 }, (_, i) => 1000 + i),
    )
    const letters = await store.query<{ n: string }>(
      "SELECT count() AS n FROM ebbflow.dead_letters WHERE source = 'readonly'",
    )
    assert.equal(Number(letters[0]!.n), 0)
  })
})
