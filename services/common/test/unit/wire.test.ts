// The publisher's per-event encoder (writeEvent) takes shortcuts for speed: the wall time added
// in 32-bit halves, raw syscall arguments written as doubles where exact, the encoded Metadata
// kept per frozen meta object. Each shortcut is checked here against what the test wrote, read
// back by the generic decoder, at the edges where a shortcut could go wrong.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Long, v1 } from '@ebbflow/proto'
import protobuf from 'protobufjs'
import type { EventMeta, SyscallEvent } from '../../src/events/types.ts'
import { decodeEventBatch, WallClock, writeEvent } from '../../src/wire.ts'

function syscall(bootNs: number, args: bigint[], meta?: EventMeta): SyscallEvent {
  return {
    kind: 'syscall',
    bootNs,
    cgroupId: 77,
    pid: 10,
    tgid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    pidnsIno: 4026531836,
    mntnsIno: 4026531841,
    comm: 'perl',
    syscallNr: 110,
    syscall: 'getppid',
    args,
    strings: [{ arg: 0, value: '/etc/passwd' }],
    ...(meta ? { meta } : {}),
  }
}

/** The raw EventBatch of `events`, as the publisher writes it (no header fields). */
function encode(events: SyscallEvent[], clock: WallClock): Uint8Array {
  const w = protobuf.Writer.create()
  for (const e of events) writeEvent(w, e, clock)
  return w.finish()
}

const wallOf = (bytes: Uint8Array) =>
  v1.EventBatch.decode(bytes).syscall.map((s) => BigInt((s.timeNs as Long).toString()))

describe('writeEvent', () => {
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
    const b = decodeEventBatch(encode([syscall(5, args)], new WallClock(0n)), new WallClock(0n))
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
    const a = decodeEventBatch(bytes1, clock).syscall
    const b = decodeEventBatch(bytes2, clock).syscall
    assert.deepEqual(a[0]!.meta, {
      node: 'n1',
      namespace: 'team-a',
      pod: 'api-0',
      labels: { app: 'api' },
    })
    assert.deepEqual(b[0]!.meta, a[0]!.meta)
    assert.equal(a[1]!.meta?.pod, 'before')
    assert.equal(b[1]!.meta?.pod, 'after')
    // Every other field survived beside the meta written last.
    assert.deepEqual(
      { ...b[1], meta: undefined },
      { ...syscall(3, [], undefined), meta: undefined },
    )
  })
})
