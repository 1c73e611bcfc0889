// Real BPF on the real kernel: in-kernel syscall counting per cgroup, per-event records for
// security-relevant syscalls, and honest drop accounting when the ring buffer is too small.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { syscallNumber } from '@ebbflow/common'
import { isRoot, kernelSyscallSlot, ownBpfMaps, startCapture } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'

const skip = isRoot() ? false : 'needs root to load BPF programs'
const nr = (name: string) => {
  const n = syscallNumber(name)
  assert.ok(n !== undefined, name)
  return n
}

describe('syscall capture', { skip, timeout: 120_000 }, () => {
  it('counts 10,000 getppid calls in the kernel for the caller cgroup', async () => {
    const cg = createCgroup('getppid')
    const { capture, sink } = startCapture({ families: 'syscall' })
    try {
      const result = await cg.run(['perl', '-e', 'getppid() for 1..10000'])
      assert.equal(result.code, 0, result.stderr)
      capture.pollCounters()
      const count = sink
        .of('syscall_count')
        .filter((c) => c.cgroupId === cg.id && c.syscall === 'getppid')
        .reduce((n, c) => n + c.count, 0)
      assert.ok(count >= 10_000, `getppid count ${count}`)
      assert.ok(count < 10_100, `getppid count ${count} is about what was made`)
      assert.equal(
        sink.of('syscall').filter((e) => e.cgroupId === cg.id && e.syscall === 'getppid').length,
        0,
        'no per-call records for counted syscalls',
      )
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })

  it('a busy cgroup moves from the hash to a slot, and no call is lost or counted twice', async () => {
    const cg = createCgroup('getppid-slot')
    const other = createCgroup('getppid-hash')
    const { capture, sink } = startCapture({ families: 'syscall' })
    const counted = (id: number) =>
      sink
        .of('syscall_count')
        .filter((c) => c.cgroupId === id && c.syscall === 'getppid')
        .reduce((n, c) => n + c.count, 0)
    try {
      // First calls: no slot yet, counted in the hash; the read gives the cgroup a slot.
      const first = await cg.run(['perl', '-e', 'getppid() for 1..10000'])
      assert.equal(first.code, 0, first.stderr)
      capture.pollCounters()
      assert.ok(kernelSyscallSlot(cg.id), 'the busy cgroup got a slot')
      assert.equal(kernelSyscallSlot(other.id), false, 'a cgroup with no calls has no slot')
      const afterFirst = counted(cg.id)
      assert.ok(afterFirst >= 10_000 && afterFirst < 10_100, `first count ${afterFirst}`)
      // Then on the slot, while another cgroup (no slot yet) is still counted in the hash.
      const second = await cg.run(['perl', '-e', 'getppid() for 1..25000'])
      const third = await other.run(['perl', '-e', 'getppid() for 1..7000'])
      assert.equal(second.code, 0, second.stderr)
      assert.equal(third.code, 0, third.stderr)
      capture.pollCounters()
      capture.pollCounters() // a read with no new calls adds nothing
      const total = counted(cg.id)
      assert.ok(total - afterFirst >= 25_000 && total - afterFirst < 25_100, `second ${total}`)
      const otherCount = counted(other.id)
      assert.ok(otherCount >= 7_000 && otherCount < 7_100, `other cgroup ${otherCount}`)
      // One delta per (cgroup, syscall) per read, whichever path counted.
      const perRead = new Map<string, number>()
      for (const c of sink.of('syscall_count')) {
        const key = `${c.bootNs}:${c.cgroupId}:${c.syscallNr}`
        perRead.set(key, (perRead.get(key) ?? 0) + 1)
      }
      assert.ok(
        [...perRead.values()].every((n) => n === 1),
        'no duplicate deltas in one read',
      )
    } finally {
      await capture.stop()
      await cg.remove()
      await other.remove()
    }
  })

  it('records unshare and mount with their arguments', async () => {
    const cg = createCgroup('security')
    const { capture, sink } = startCapture({ families: 'syscall' })
    const marker = `ebf-${randomUUID().slice(0, 8)}`
    try {
      // CLONE_NEWUTS: a harmless unshare for root; the mount fails (no such target) after entry.
      const script = `my ($s, $t, $f) = ("src-${marker}", "/nonexistent/${marker}", "tmpfs"); syscall(${nr('unshare')}, 0x04000000); syscall(${nr('mount')}, $s, $t, $f, 0, 0);`
      const result = await cg.run(['perl', '-e', script])
      assert.equal(result.code, 0, result.stderr)
      await sink.waitFor(
        () => sink.of('syscall').some((e) => e.cgroupId === cg.id && e.syscall === 'mount'),
        10_000,
        'the mount record',
      )
      const unshare = sink
        .of('syscall')
        .find((e) => e.cgroupId === cg.id && e.syscall === 'unshare')!
      assert.ok(unshare, 'an unshare record')
      assert.equal(unshare.args[0], 0x04000000n)
      assert.equal(unshare.syscallNr, nr('unshare'))
      assert.equal(unshare.comm, 'perl')
      const mount = sink.of('syscall').find((e) => e.cgroupId === cg.id && e.syscall === 'mount')!
      assert.deepEqual(mount.strings, [
        { arg: 0, value: `src-${marker}` },
        { arg: 1, value: `/nonexistent/${marker}` },
      ])
      assert.equal(mount.tgid, result.pid)
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })
})

/** max_entries of the ring buffer maps this process holds open, read from the kernel (fdinfo). */
const openRingSizes = () =>
  ownBpfMaps()
    // BPF_MAP_TYPE_RINGBUF is 27.
    .filter((info) => /^map_type:\s*27$/m.test(info))
    .map((info) => Number(/^max_entries:\s*(\d+)$/m.exec(info)![1]))
    .sort((a, b) => a - b)

describe('ring buffer sizes', { skip, timeout: 120_000 }, () => {
  it('by family unless set: 1 MiB for exec, 2 MiB for syscall; a setting sizes every ring', async () => {
    const before = openRingSizes()
    assert.deepEqual(before, [], 'no ring of an earlier capture left open')
    const byDefault = startCapture({ families: 'exec,syscall' })
    try {
      assert.deepEqual(openRingSizes(), [1 << 20, 2 << 20])
    } finally {
      await byDefault.capture.stop()
    }
    const set = startCapture({ families: 'exec,syscall', ringBufferBytes: String(4 << 20) })
    try {
      assert.deepEqual(openRingSizes(), [4 << 20, 4 << 20])
    } finally {
      await set.capture.stop()
    }
  })
})

describe('overflow', { skip, timeout: 120_000 }, () => {
  it('a tiny ring buffer drops records, and captured + dropped equals produced', async () => {
    const cg = createCgroup('overflow')
    // Every getppid becomes a record; one page of ring buffer holds about ten of them.
    const { capture, sink } = startCapture({
      families: 'syscall',
      securitySyscalls: 'getppid',
      ringBufferBytes: '4096',
    })
    try {
      capture.pollCounters()
      const before = sink.events.length
      const result = await cg.run(['perl', '-e', 'getppid() for 1..20000'])
      assert.equal(result.code, 0, result.stderr)
      // The drain thread hands over what the ring still holds a moment later: read the counters
      // until every getppid is accounted for (or the deadline passes), then compare.
      const tally = () => {
        capture.pollCounters()
        const window = sink.events.slice(before)
        return {
          produced: window
            .filter((e) => e.kind === 'syscall_count' && e.syscall === 'getppid')
            .reduce((n, e) => n + (e.kind === 'syscall_count' ? e.count : 0), 0),
          captured: window.filter((e) => e.kind === 'syscall' && e.syscall === 'getppid').length,
          dropped: window
            .filter((e) => e.kind === 'drops' && e.reason === 'buffer_full')
            .reduce((n, e) => n + (e.kind === 'drops' ? e.count : 0), 0),
        }
      }
      let t = tally()
      for (const deadline = Date.now() + 5000; Date.now() < deadline; t = tally()) {
        if (t.produced >= 20_000 && t.captured + t.dropped >= t.produced) break
        await new Promise((r) => setTimeout(r, 20))
      }
      const { produced, captured, dropped } = t
      assert.ok(produced >= 20_000, `produced ${produced}`)
      assert.ok(dropped > 0, 'some records were dropped')
      assert.equal(
        captured + dropped,
        produced,
        `captured ${captured} + dropped ${dropped} vs produced ${produced}`,
      )
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })
})
