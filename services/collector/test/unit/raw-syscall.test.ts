// The syscall fast path (records written from the ring's bytes, no event object) must publish
// exactly the bytes the object path publishes for the same ring batch: the same records go
// through decode → enricher → publisher once each way, and the batches the transport receives
// are compared byte for byte, then read back against the values the test wrote.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import {
  decodeBatch,
  EVENT_TYPE,
  LAYOUTS,
  newDecodeErrors,
  type RecordEvent,
  type SyscallEvent,
  syscallNumber,
} from '@ebbflow/common'
import { decodeEventBatch, WallClock } from '@ebbflow/common/wire'
import { onClock } from '../../../../tests/support/wire-read.ts'
import { CgroupPathCache } from '../../src/enrich/cgroup-path.ts'
import { Enricher } from '../../src/enrich/enricher.ts'
import { InProcessTransport, Publisher } from '../../src/publish/index.ts'

const SYSCALL = LAYOUTS.ebf_syscall_event_v1
const F = SYSCALL.fields
const STR_LEN = F.str.size / 2

interface Rec {
  bootNs: bigint
  cgroupId: bigint
  comm: Buffer
  nr: number
  args: bigint[]
  /** Bytes of the two string slots, and the size the kernel reported for each. */
  strs?: [Buffer, number][]
}

/** One record as the kernel writes it (offsets from the generated layout). */
function raw(r: Rec): Buffer {
  const b = Buffer.alloc(SYSCALL.size)
  b.writeUInt16LE(EVENT_TYPE.SYSCALL, F['header.type'].offset)
  b.writeUInt16LE(1, F['header.version'].offset)
  b.writeUInt32LE(SYSCALL.size, F['header.size'].offset)
  b.writeBigUInt64LE(r.bootNs, F['header.timestamp_ns'].offset)
  b.writeBigUInt64LE(r.cgroupId, F['task.cgroup_id'].offset)
  b.writeUInt32LE(4242, F['task.pid'].offset)
  b.writeUInt32LE(4241, F['task.tgid'].offset)
  b.writeUInt32LE(1, F['task.ppid'].offset)
  b.writeUInt32LE(1000, F['task.uid'].offset)
  b.writeUInt32LE(0xffff_fffe, F['task.gid'].offset)
  b.writeUInt32LE(4026531836, F['task.pidns_ino'].offset)
  b.writeUInt32LE(4026531841, F['task.mntns_ino'].offset)
  r.comm.copy(b, F['task.comm'].offset, 0, 16)
  for (const [i, a] of r.args.entries()) b.writeBigUInt64LE(a, F.args.offset + i * 8)
  b.writeUInt32LE(r.nr, F.syscall_nr.offset)
  r.strs?.forEach(([bytes, size], slot) => {
    b.writeUInt16LE(size, F.str_size.offset + slot * 2)
    bytes.copy(b, F.str.offset + slot * STR_LEN, 0, STR_LEN)
  })
  return b
}

/** Frames records as the native addon does: [u32 size][record][pad to 8]. */
function frame(records: Buffer[]): Buffer {
  const parts: Buffer[] = []
  for (const r of records) {
    const head = Buffer.alloc(4)
    head.writeUInt32LE(r.length)
    parts.push(head, r, Buffer.alloc(((r.length + 7) & ~7) - r.length))
  }
  return Buffer.concat(parts)
}

const CLOCK = new WallClock(1_764_000_000_000_000_000n)
const OPENAT = syscallNumber('openat')!
const GETPPID = syscallNumber('getppid')!
const stringArgs = (nr: number): readonly number[] => (nr === OPENAT ? [1] : [])

describe('syscall records written from the ring bytes', () => {
  const root = mkdtempSync(join(tmpdir(), 'ebbflow-raw-syscall-'))
  after(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'system.slice/app.service'), { recursive: true })
  const unit = BigInt(statSync(join(root, 'system.slice/app.service'), { bigint: true }).ino)

  function run(fast: boolean, batches: Buffer[]) {
    const transport = new InProcessTransport(1 << 30)
    const publisher = new Publisher(transport, {
      node: 'n1',
      clock: CLOCK,
      bootNow: () => 1,
      queueBudgetBytes: 1 << 30,
      batchMaxEvents: 5,
      batchMaxBytes: 1 << 20,
      lingerMs: 60_000,
      instanceId: 'i',
      bootId: 'b',
    })
    const enricher = new Enricher(publisher, {
      node: 'n1',
      cgroups: new CgroupPathCache({ root, maxEntries: 100, rescanMinMs: 0 }),
      lateMetadataMs: 60_000,
      maxPendingEvents: 100,
      maxCachedCgroups: 100,
      retryIntervalMs: 1_000_000,
    })
    const takeSyscall = fast ? enricher.rawSyscalls() : undefined
    if (fast) assert.ok(takeSyscall, 'the publisher offers a raw writer')
    let decoded = 0
    let objects = 0
    for (const batch of batches) {
      const out: RecordEvent[] = []
      const errors = newDecodeErrors()
      decoded += decodeBatch(batch, out, errors, {
        stringArgs,
        ...(takeSyscall ? { takeSyscall } : {}),
      })
      assert.deepEqual(errors, newDecodeErrors())
      objects += out.length
      enricher.records(out, 'syscall')
    }
    enricher.stop()
    return { publisher, transport, decoded, objects }
  }

  async function published(transport: InProcessTransport, publisher: Publisher) {
    // The transport holds everything unread (its capacity is large): close, then read it all.
    const stats = await publisher.close(5000)
    const values: Buffer[] = []
    if (stats.publishedBatches === 0) return values
    for await (const r of transport.consume()) {
      values.push(r.value)
      if (values.length === stats.publishedBatches) break
    }
    return values
  }

  it('publishes byte for byte what the object path publishes, holding only unresolved cgroups', async () => {
    const utf8Comm = Buffer.from('wörker\0')
    const invalidComm = Buffer.from([0x66, 0xc3, 0x28, 0xff, 0x6f, 0])
    const records: Rec[] = [
      {
        bootNs: 1n,
        cgroupId: unit,
        comm: Buffer.from('perl\0'),
        nr: GETPPID,
        args: [0n, 1n, 2n, 3n, 4n, 5n],
      },
      // The edges of the uint64 halves: 2^32 − 1, 2^32, 2^53 − 1, 2^53, 2^64 − 1.
      {
        bootNs: 2n ** 32n + 7n,
        cgroupId: unit,
        comm: Buffer.from('0123456789abcdef'), // 16 bytes, no NUL
        nr: GETPPID,
        args: [
          2n ** 32n - 1n,
          2n ** 32n,
          2n ** 53n - 1n,
          2n ** 53n,
          2n ** 64n - 1n,
          0x7fff_ffff_f000n,
        ],
      },
      // The node's own (cgroup id 0: the node's meta), and a cgroup no directory names: held,
      // then sent unresolved.
      { bootNs: 3n, cgroupId: 0n, comm: utf8Comm, nr: GETPPID, args: [9n, 0n, 0n, 0n, 0n, 0n] },
      {
        bootNs: 4n,
        cgroupId: 2n ** 60n + 3n,
        comm: invalidComm,
        nr: GETPPID,
        args: [1n, 0n, 0n, 0n, 0n, 0n],
      },
      {
        bootNs: 5n,
        cgroupId: unit,
        comm: invalidComm,
        nr: OPENAT,
        args: [0xffff_ff9cn, 0x5555_0000_1000n, 0n, 0n, 0n, 0n],
        // A configured slot, and one past the configured args (not published).
        strs: [
          [Buffer.from('/etc/passwd\0'), 12],
          [Buffer.from('ignored\0'), 8],
        ],
      },
      {
        bootNs: 6n,
        cgroupId: unit,
        comm: utf8Comm,
        nr: OPENAT,
        args: [1n, 2n, 3n, 4n, 5n, 6n],
        // A path longer than 127 bytes (its length takes two varint bytes) and cut at the slot.
        strs: [[Buffer.from(`/${'d'.repeat(STR_LEN + 10)}`), STR_LEN + 20]],
      },
      {
        bootNs: 7n,
        cgroupId: unit,
        comm: Buffer.from('sh\0'),
        nr: OPENAT,
        args: [1n, 2n, 3n, 4n, 5n, 6n],
        strs: [[Buffer.from('/tmp/caf\xe9\0', 'latin1'), 10]],
      },
    ]
    const batches = [frame(records.slice(0, 4).map(raw)), frame(records.slice(4).map(raw))]
    const object = run(false, batches)
    const fast = run(true, batches)
    assert.equal(object.decoded, records.length)
    assert.equal(fast.decoded, records.length)
    // Only the record of the cgroup no directory names was decoded into an object.
    assert.equal(fast.objects, 1)
    const a = await published(object.transport, object.publisher)
    const b = await published(fast.transport, fast.publisher)
    assert.ok(a.length >= 2)
    assert.deepEqual(b, a)

    // And what was published is what the test wrote.
    const got = b
      .flatMap((v) => decodeEventBatch(v).syscall)
      .map((e) => onClock(e, CLOCK) as SyscallEvent)
    assert.deepEqual(
      got.map((e) => e.bootNs),
      [1, 2 ** 32 + 7, 3, 5, 6, 7, 4], // the held record after the others
    )
    const byBoot = new Map(got.map((e) => [e.bootNs, e]))
    assert.deepEqual(byBoot.get(2 ** 32 + 7)?.args, records[1]!.args)
    assert.equal(byBoot.get(2 ** 32 + 7)?.comm, '0123456789abcdef')
    assert.equal(byBoot.get(3)?.comm, 'wörker')
    assert.equal(byBoot.get(5)?.comm, invalidComm.subarray(0, 5).toString('utf8'))
    assert.deepEqual(byBoot.get(5)?.strings, [{ arg: 1, value: '/etc/passwd' }])
    assert.deepEqual(byBoot.get(6)?.strings, [{ arg: 1, value: `/${'d'.repeat(STR_LEN - 1)}` }])
    assert.deepEqual(byBoot.get(7)?.strings, [{ arg: 1, value: '/tmp/caf\ufffd' }])
    assert.equal(byBoot.get(1)?.meta?.cgroupPath, '/system.slice/app.service')
    assert.equal(byBoot.get(1)?.meta?.systemdUnit, 'app.service')
    assert.equal(byBoot.get(3)?.meta?.node, 'n1')
    assert.equal(byBoot.get(4)?.meta?.unresolved, true)
    assert.equal(byBoot.get(4)?.tgid, 4241)
    assert.equal(byBoot.get(4)?.gid, 0xffff_fffe)
  })
})
