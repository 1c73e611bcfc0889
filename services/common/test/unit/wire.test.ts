// The publisher's per-event encoder (writeEvent) takes shortcuts for speed: the wall time added
// in 32-bit halves, raw syscall arguments written as doubles where exact, the encoded Metadata
// kept per frozen meta object. Each shortcut is checked here against what the test wrote, read
// back by the generic decoder, at the edges where a shortcut could go wrong.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { type Long, v1 } from '@ebbflow/proto'
import protobuf from 'protobufjs'
import { syntheticSyscall } from '../../../../tests/support/synthetic-syscall.ts'
import { BatchWriter } from '../../src/batch-writer.ts'
import type { EventMeta, SyscallEvent } from '../../src/events/types.ts'
import { decodeEventBatch, WallClock, writeEvent } from '../../src/wire.ts'

function syscall(bootNs: number, args: bigint[], meta?: EventMeta): SyscallEvent {
  const strings = [{ arg: 0, value: '/etc/passwd' }]
  return syntheticSyscall({ bootNs, args, strings, ...(meta ? { meta } : {}) })
}

const WRITERS = {
  'the publisher BatchWriter': () => new BatchWriter(64),
  'a protobufjs Writer': () => protobuf.Writer.create(),
}
let makeWriter: () => BatchWriter | protobuf.Writer = WRITERS['a protobufjs Writer']

/** The raw EventBatch of `events`, as the publisher writes it (no header fields). */
function encode(events: SyscallEvent[], clock: WallClock): Uint8Array {
  const w = makeWriter()
  for (const e of events) writeEvent(w, e, clock)
  return w.finish()
}

const wallOf = (bytes: Uint8Array) =>
  v1.EventBatch.decode(bytes).syscall.map((s) => BigInt((s.timeNs as Long).toString()))

for (const [writerName, make] of Object.entries(WRITERS))
  describe(`writeEvent into ${writerName}`, () => {
    before(() => {
      makeWriter = make
    })

    it('stamps offset + boot time exactly, across the 32-bit carry and at the range edges', () => {
      const cases: [bigint, number][] = [
        [1_700_000_000_000_000_000n, 0],
        [1_700_000_000_000_000_000n, 123_456_789_012],
        // The low halves overflow together: the carry into the high half.
        [(1n << 32n) - 1n + (5n << 32n), 1],
        [(1n << 32n) - 1n + (5n << 32n), 2 ** 32 - 1],
        [(1n << 40n) + 0xffff_fff0n, 2 ** 52 + 0x20],
        [0n, Number.MAX_SAFE_INTEGER],
        // Off the fast path: a fraction (truncated, as Long.fromNumber does).
        [1000n, 12.75],
      ]
      for (const [offset, bootNs] of cases) {
        const clock = new WallClock(offset)
        const [wall] = wallOf(encode([syscall(bootNs, [])], clock))
        assert.equal(wall, offset + BigInt(Math.trunc(bootNs)), `offset ${offset} + ${bootNs}`)
      }
    })

    it('writes every raw argument exactly, below and above 2^53', () => {
      const args = [0n, 1n, (1n << 53n) - 1n, 1n << 53n, 0x7ffd_1234_5678n, (1n << 64n) - 1n]
      const b = decodeEventBatch(encode([syscall(5, args)], new WallClock(0n)))
      assert.deepEqual(b.syscall[0]!.args, args)
    })

    it('encodes a shared frozen meta once per object, and a mutable one as it is at each write', () => {
      const clock = new WallClock(1_000_000n)
      const frozen: EventMeta = Object.freeze({
        node: 'n1',
        namespace: 'team-a',
        pod: 'api-0',
        labels: { app: 'api' },
      })
      const loose: EventMeta = { node: 'n1', pod: 'before' }
      const first = syscall(1, [], loose)
      const bytes1 = encode([syscall(1, [], frozen), first], clock)
      loose.pod = 'after'
      const bytes2 = encode([syscall(2, [], frozen), syscall(3, [], loose)], clock)
      const a = decodeEventBatch(bytes1).syscall
      const b = decodeEventBatch(bytes2).syscall
      assert.deepEqual(a[0]!.meta, {
        node: 'n1',
        namespace: 'team-a',
        pod: 'api-0',
        labels: { app: 'api' },
      })
      assert.deepEqual(b[0]!.meta, a[0]!.meta)
      assert.equal(a[1]!.meta?.pod, 'before')
      assert.equal(b[1]!.meta?.pod, 'after')
      // Every other field survived beside the meta written last, the time as offset + boot.
      const { bootNs: _, ...sent } = syscall(3, [], undefined)
      assert.deepEqual(
        { ...b[1], meta: undefined },
        { ...sent, timeNs: 1_000_003n, meta: undefined },
      )
    })
  })

/** The wire forms both writers have. */
interface Wire {
  uint32(v: number): Wire
  int32(v: number): Wire
  uint64(v: number): Wire
  bool(v: boolean): Wire
  string(v: string): Wire
  bytes(v: Uint8Array): Wire
  fork(): Wire
  ldelim(): Wire
}

describe('BatchWriter', () => {
  it('writes the same bytes as protobufjs for each wire form, across length and buffer growth', () => {
    const mine = new BatchWriter(8)
    const ref = protobuf.Writer.create()
    const long = 'ä'.repeat(100) // 200 bytes: a two-byte length, moved into place
    const huge = 'x'.repeat(20_000) // three-byte length and several growths
    for (const w of [mine, ref] as unknown as Wire[]) {
      w.uint32(0)
        .uint32(127)
        .uint32(128)
        .uint32(2 ** 32 - 1)
      w.int32(-1).int32(-2147483648).int32(300)
      w.bool(true).bool(false)
      w.string('').string('getppid').string(long).string(huge)
      w.bytes(new Uint8Array([1, 2, 3]))
      w.fork().uint32(5).string(long).ldelim() // nested past 127 bytes
      w.fork().fork().uint32(1).ldelim().ldelim()
      for (const v of [0, 1, 2 ** 32, 2 ** 53 - 1, Number(1_700_000_000_123_456_768n), -5])
        w.uint64(v)
    }
    const first = Buffer.from(mine.finish())
    assert.deepEqual(first, Buffer.from(ref.finish()))
    // Reused after reset(), it writes the same again from its start.
    mine.reset()
    mine.string(long)
    assert.deepEqual(
      Buffer.from(mine.finish()),
      Buffer.from(protobuf.Writer.create().string(long).finish()),
    )
  })
})
