// Turns dumps of in-kernel counter maps into deltas since the previous read. Snapshots, not
// read-and-delete: deleting a per-CPU entry after reading it would lose the increments that
// land in between; a snapshot diff loses nothing while the key stays in the map.
import {
  formatAddress,
  LAYOUTS,
  type SyscallCountDelta,
  syscallName,
  type TrafficDelta,
} from '@ebbflow/common'

export interface MapDump {
  keys: Buffer
  values: Buffer
  count: number
  keySize: number
  valueSize: number
  perCpu: boolean
  numCpus: number
}

/** Sums the u64 fields of each entry over CPUs: returns, per entry, `fields` totals. */
export function sumPerCpu(dump: MapDump, fields: number): Float64Array {
  const totals = new Float64Array(dump.count * fields)
  const stride = (dump.valueSize + 7) & ~7
  const cpus = dump.perCpu ? dump.numCpus : 1
  const view = new DataView(dump.values.buffer, dump.values.byteOffset, dump.values.byteLength)
  for (let i = 0; i < dump.count; i++) {
    for (let cpu = 0; cpu < cpus; cpu++) {
      const base = (i * cpus + cpu) * stride
      for (let f = 0; f < fields; f++) {
        const at = base + f * 8
        totals[i * fields + f]! += view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true)
      }
    }
  }
  return totals
}

/** Remembers the last totals per key and yields what changed since. */
export class DeltaTracker {
  private readonly previous = new Map<string, { totals: number[]; idle: number }>()
  private readonly fields: number

  constructor(fields: number) {
    this.fields = fields
  }

  /**
   * Calls `emit(keyOffset, deltas)` for every key whose totals grew. Returns the keys that
   * were idle for `idleLimit` reads in a row (candidates to delete from the kernel map).
   */
  update(
    dump: MapDump,
    emit: (keyOffset: number, deltas: number[]) => void,
    idleLimit = Infinity,
  ): Buffer[] {
    const totals = sumPerCpu(dump, this.fields)
    const seen = new Set<string>()
    const idle: Buffer[] = []
    for (let i = 0; i < dump.count; i++) {
      const keyOffset = i * dump.keySize
      const id = dump.keys.toString('latin1', keyOffset, keyOffset + dump.keySize)
      seen.add(id)
      const now = Array.from(totals.subarray(i * this.fields, (i + 1) * this.fields))
      const before = this.previous.get(id)
      // A key that vanished (LRU eviction, deletion) and came back starts from zero again.
      const deltas = now.map((v, f) =>
        before && v >= before.totals[f]! ? v - before.totals[f]! : v,
      )
      const changed = deltas.some((d) => d > 0)
      const idleReads = changed ? 0 : (before?.idle ?? 0) + 1
      this.previous.set(id, { totals: now, idle: idleReads })
      if (changed) emit(keyOffset, deltas)
      else if (idleReads >= idleLimit)
        idle.push(Buffer.from(dump.keys.subarray(keyOffset, keyOffset + dump.keySize)))
    }
    for (const id of this.previous.keys()) if (!seen.has(id)) this.previous.delete(id)
    return idle
  }

  forget(key: Buffer): void {
    this.previous.delete(key.toString('latin1'))
  }
}

const SC = LAYOUTS.ebf_syscall_count_key.fields
const TK = LAYOUTS.ebf_traffic_key.fields

export function syscallCountDeltas(
  tracker: DeltaTracker,
  dump: MapDump,
  bootNs: number,
  intervalNs: number,
  idleLimit?: number,
): { deltas: SyscallCountDelta[]; idle: Buffer[] } {
  const deltas: SyscallCountDelta[] = []
  const view = new DataView(dump.keys.buffer, dump.keys.byteOffset, dump.keys.byteLength)
  const idle = tracker.update(
    dump,
    (at, [count]) => {
      const nr = view.getUint32(at + SC.syscall_nr.offset, true)
      deltas.push({
        kind: 'syscall_count',
        bootNs,
        intervalNs,
        cgroupId:
          view.getUint32(at + SC.cgroup_id.offset + 4, true) * 2 ** 32 +
          view.getUint32(at + SC.cgroup_id.offset, true),
        syscallNr: nr,
        syscall: syscallName(nr),
        count: count!,
      })
    },
    idleLimit,
  )
  return { deltas, idle }
}

export function trafficDeltas(
  tracker: DeltaTracker,
  dump: MapDump,
  bootNs: number,
  intervalNs: number,
): TrafficDelta[] {
  const deltas: TrafficDelta[] = []
  const keys = dump.keys
  const view = new DataView(keys.buffer, keys.byteOffset, keys.byteLength)
  tracker.update(dump, (at, [packets, bytes]) => {
    const family = keys[at + TK.family.offset] === 2 ? 4 : 6
    deltas.push({
      kind: 'traffic',
      bootNs,
      intervalNs,
      cgroupId:
        view.getUint32(at + TK.cgroup_id.offset + 4, true) * 2 ** 32 +
        view.getUint32(at + TK.cgroup_id.offset, true),
      direction: keys[at + TK.direction.offset] === 1 ? 'egress' : 'ingress',
      protocol: keys[at + TK.protocol.offset]!,
      family,
      remoteAddr: formatAddress(keys, at + TK.remote_addr.offset, family),
      remotePort: view.getUint16(at + TK.remote_port.offset, true),
      localPort: view.getUint16(at + TK.local_port.offset, true),
      packets: packets!,
      bytes: bytes!,
    })
  })
  return deltas
}
