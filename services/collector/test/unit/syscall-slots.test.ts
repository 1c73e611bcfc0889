// The slot bookkeeping of the syscall counters against a stand-in for the kernel maps: the
// test plays the kernel (each CPU caches cgroup → slot with the generation it read, and trusts
// the entry only while the generation is unchanged, as the BPF program does) and compares the
// deltas with the calls it made.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LAYOUTS } from '@ebbflow/common'
import { mergeSyscallCounts, type SlotMaps, SyscallSlots } from '../../src/syscall-slots.ts'

const CPUS = 2
const SLOT_BYTES = LAYOUTS.ebf_syscall_slot_counts.size

class FakeKernel implements SlotMaps {
  counts = new Map<number, Buffer>()
  slotOf = new Map<number, number>()
  generation = 0
  mapLookup(map: string, key: Buffer): Buffer | null {
    assert.equal(map, 'syscall_slot_counts')
    const slot = key.readUInt32LE(0)
    if (!this.counts.has(slot)) this.counts.set(slot, Buffer.alloc(SLOT_BYTES * CPUS))
    return Buffer.from(this.counts.get(slot)!)
  }
  mapUpdate(map: string, key: Buffer, value: Buffer): void {
    if (map === 'syscall_cgroup_slots')
      this.slotOf.set(Number(key.readBigUInt64LE(0)), value.readUInt32LE(0))
    else if (map === '.data.slot_gen') this.generation = Number(value.readBigUInt64LE(0))
    else assert.fail(`unexpected map ${map}`)
  }
  mapDelete(map: string, key: Buffer): boolean {
    assert.equal(map, 'syscall_cgroup_slots')
    return this.slotOf.delete(Number(key.readBigUInt64LE(0)))
  }
  /** A call from `cgroupId` on `cpu`: true if a slot counted it (else the hash would). */
  cache = new Map<number, { cgroupId: number; generation: number; slot: number | undefined }>()
  call(cgroupId: number, nr: number, cpu = 0): boolean {
    let entry = this.cache.get(cpu)
    if (!entry || entry.cgroupId !== cgroupId || entry.generation !== this.generation) {
      entry = { cgroupId, generation: this.generation, slot: this.slotOf.get(cgroupId) }
      this.cache.set(cpu, entry)
    }
    const slot = entry.slot
    if (slot === undefined) return false
    const buf = this.counts.get(slot) ?? Buffer.alloc(SLOT_BYTES * CPUS)
    this.counts.set(slot, buf)
    const at = cpu * SLOT_BYTES + nr * 8
    buf.writeBigUInt64LE(buf.readBigUInt64LE(at) + 1n, at)
    return true
  }
}

const sum = (
  deltas: { cgroupId: number; syscallNr: number; count: number }[],
  cg: number,
  nr: number,
) => deltas.filter((d) => d.cgroupId === cg && d.syscallNr === nr).reduce((n, d) => n + d.count, 0)

describe('SyscallSlots', () => {
  it('assigns free slots, bumps the generation, and yields only new calls per read', () => {
    const k = new FakeKernel()
    const slots = new SyscallSlots(k, 2)
    assert.equal(slots.assign([11, 12, 13]), 2, 'two slots for three cgroups')
    assert.equal(k.generation, 1)
    // What the kernel's cgroup → slot map now holds.
    assert.deepEqual([...k.slotOf.keys()].sort(), [11, 12])
    for (let i = 0; i < 5; i++) k.call(11, 39, i % CPUS)
    for (let i = 0; i < 3; i++) k.call(12, 0)
    assert.equal(k.call(13, 39), false, 'the third cgroup stays on the hash')
    const first = slots.read(1, 1)
    assert.equal(sum(first, 11, 39), 5)
    assert.equal(sum(first, 12, 0), 3)
    assert.equal(first.length, 2)
    assert.deepEqual(slots.read(2, 1), [], 'no calls, no deltas')
  })

  it('frees an idle slot, reads it once more, and its next owner starts from zero', () => {
    const k = new FakeKernel()
    const slots = new SyscallSlots(k, 1)
    slots.assign([21])
    for (let i = 0; i < 7; i++) k.call(21, 1, i % CPUS) // both CPUs now cache 21 → slot 0
    assert.equal(sum(slots.read(1, 1), 21, 1), 7)
    slots.read(2, 1, 2)
    const generation = k.generation
    slots.read(3, 1, 2) // second idle read: freed
    assert.equal(k.generation, generation + 1, 'a free bumps the generation')
    assert.equal(k.slotOf.has(21), false, 'cgroup unmapped')
    for (let cpu = 0; cpu < CPUS; cpu++)
      assert.equal(k.call(21, 1, cpu), false, 'a stale cache entry no longer counts in the slot')
    assert.equal(slots.assign([22]), 0, 'the freed slot is drained before reuse')
    const drained = slots.read(4, 1, 2)
    assert.deepEqual(drained, [])
    assert.equal(slots.assign([22]), 1)
    for (let i = 0; i < 4; i++) k.call(22, 1)
    const reused = slots.read(5, 1, 2)
    assert.equal(sum(reused, 22, 1), 4, 'the new owner does not inherit the old counts')
    assert.equal(sum(reused, 21, 1), 0)
  })

  it('merges a hash delta and a slot delta of one cgroup and syscall', () => {
    const base = { kind: 'syscall_count' as const, bootNs: 1, intervalNs: 1, syscall: 'read' }
    const merged = mergeSyscallCounts([
      { ...base, cgroupId: 1, syscallNr: 0, count: 2 },
      { ...base, cgroupId: 1, syscallNr: 0, count: 3 },
      { ...base, cgroupId: 2, syscallNr: 0, count: 1 },
    ])
    assert.deepEqual(
      merged.map((d) => [d.cgroupId, d.count]),
      [
        [1, 5],
        [2, 1],
      ],
    )
  })
})
