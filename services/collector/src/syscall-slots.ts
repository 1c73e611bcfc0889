// The userspace half of the syscall counters' fast path (bpf/src/syscall.bpf.c): busy cgroups
// get a slot of a per-CPU array, counted there instead of in the hash map. This module assigns
// and frees slots and turns the slots' counters into deltas, the same SyscallCountDelta as the
// hash map's, so nothing downstream knows which path counted a call.
//
// Nothing is lost or counted twice: a slot's counters are never reset, each owner's deltas are
// taken against the totals the slot had when it was assigned; a freed slot is read once more
// (calls that passed the kernel's generation check just before it was freed) before it is
// reused. Every change to the cgroup → slot map is followed by a generation bump: the kernel's
// per-CPU cache believes an entry only while it carries the current generation.
import { LAYOUTS, LIMITS, type SyscallCountDelta, syscallName } from '@ebbflow/common'

/** The BpfObject methods used here (a test can pass a stand-in). */
export interface SlotMaps {
  mapLookup(map: string, key: Buffer): Buffer | null
  mapUpdate(map: string, key: Buffer, value: Buffer): void
  mapDelete(map: string, key: Buffer): boolean
}

const NR_MAX = LIMITS.SYSCALL_NR_MAX
const SLOT_BYTES = LAYOUTS.ebf_syscall_slot_counts.size

interface Owned {
  slot: number
  previous: Float64Array
  idleReads: number
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}
const u64 = (n: number) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(n))
  return b
}

export class SyscallSlots {
  private readonly maps: SlotMaps
  private readonly owned = new Map<number, Owned>()
  /** Freed at the previous read: read once more for their last owner, then reusable. */
  private draining: Array<{ cgroupId: number } & Owned> = []
  private readonly free: number[] = []
  private generation = 0

  constructor(maps: SlotMaps, slots: number = LIMITS.SYSCALL_SLOTS) {
    this.maps = maps
    for (let s = slots - 1; s >= 0; s--) this.free.push(s)
  }

  /** The slot's counters summed over CPUs, by syscall number. */
  private totals(slot: number): Float64Array {
    const out = new Float64Array(NR_MAX)
    const value = this.maps.mapLookup('syscall_slot_counts', u32(slot))
    if (!value) return out
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
    for (let base = 0; base + SLOT_BYTES <= value.length; base += SLOT_BYTES) {
      for (let nr = 0; nr < NR_MAX; nr++) {
        const at = base + nr * 8
        const lo = view.getUint32(at, true)
        const hi = view.getUint32(at + 4, true)
        if (lo !== 0 || hi !== 0) out[nr]! += hi * 2 ** 32 + lo
      }
    }
    return out
  }

  private deltas(
    cgroupId: number,
    o: Owned,
    bootNs: number,
    intervalNs: number,
    out: SyscallCountDelta[],
  ): boolean {
    const now = this.totals(o.slot)
    let changed = false
    for (let nr = 0; nr < NR_MAX; nr++) {
      const count = now[nr]! - o.previous[nr]!
      if (count <= 0) continue
      changed = true
      out.push({
        kind: 'syscall_count',
        bootNs,
        intervalNs,
        cgroupId,
        syscallNr: nr,
        syscall: syscallName(nr),
        count,
      })
    }
    o.previous = now
    return changed
  }

  /**
   * The calls counted in slots since the previous read. A slot whose cgroup made no call for
   * `idleLimit` reads in a row is freed (its cgroup falls back to the hash map if it wakes).
   */
  read(bootNs: number, intervalNs: number, idleLimit = Infinity): SyscallCountDelta[] {
    const out: SyscallCountDelta[] = []
    let freed = 0
    for (const d of this.draining) {
      this.deltas(d.cgroupId, d, bootNs, intervalNs, out)
      this.free.push(d.slot)
    }
    this.draining = []
    for (const [cgroupId, o] of this.owned) {
      const changed = this.deltas(cgroupId, o, bootNs, intervalNs, out)
      o.idleReads = changed ? 0 : o.idleReads + 1
      if (o.idleReads >= idleLimit) {
        this.maps.mapDelete('syscall_cgroup_slots', u64(cgroupId))
        this.owned.delete(cgroupId)
        this.draining.push({ cgroupId, ...o })
        freed++
      }
    }
    // After the map deletes: a CPU whose cache still names a freed slot then looks again.
    if (freed > 0) this.bumpGeneration()
    return out
  }

  /**
   * Gives free slots to cgroups that made calls counted in the hash map (busy, without a
   * slot). Returns how many got one; the rest stay on the hash map until slots free up.
   */
  assign(cgroupIds: Iterable<number>): number {
    let n = 0
    for (const cgroupId of cgroupIds) {
      if (this.owned.has(cgroupId) || this.draining.some((d) => d.cgroupId === cgroupId)) continue
      const slot = this.free.pop()
      if (slot === undefined) break
      // The slot keeps the counts of its earlier owners: this owner's start from here.
      const previous = this.totals(slot)
      this.maps.mapUpdate('syscall_cgroup_slots', u64(cgroupId), u32(slot))
      this.owned.set(cgroupId, { slot, previous, idleReads: 0 })
      n++
    }
    // After the map writes: a CPU that cached "no slot" for one of these looks again.
    if (n > 0) this.bumpGeneration()
    return n
  }

  private bumpGeneration(): void {
    this.generation++
    this.maps.mapUpdate('.data.slot_gen', u32(0), u64(this.generation))
  }
}

/** One delta per (cgroup, syscall): the hash and a slot may both have counted in one interval. */
export function mergeSyscallCounts(deltas: SyscallCountDelta[]): SyscallCountDelta[] {
  const byKey = new Map<string, SyscallCountDelta>()
  for (const d of deltas) {
    const key = `${d.cgroupId}:${d.syscallNr}`
    const seen = byKey.get(key)
    if (seen) seen.count += d.count
    else byKey.set(key, d)
  }
  return [...byKey.values()]
}
