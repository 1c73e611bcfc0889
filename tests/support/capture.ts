// Runs the real kernel capture for a test and keeps everything it hands over.

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import {
  type CaptureSink,
  type CollectorConfigInput,
  KernelCapture,
  loadCollectorConfig,
} from '@ebbflow/collector'
import {
  type CapturedEvent,
  type CounterEvent,
  createLogger,
  type Family,
  type RecordEvent,
} from '@ebbflow/common'

export class RecordingSink implements CaptureSink {
  readonly events: CapturedEvent[] = []
  private waiters: { match: () => boolean; resolve: () => void }[] = []

  records(events: RecordEvent[], _family: Family): void {
    for (const e of events) this.events.push(e)
    this.wake()
  }

  counters(events: CounterEvent[]): void {
    for (const e of events) this.events.push(e)
    this.wake()
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.match()) return true
      w.resolve()
      return false
    })
  }

  /** Resolves once `predicate` holds for the events seen so far; rejects after timeoutMs. */
  waitFor(
    predicate: (events: CapturedEvent[]) => boolean,
    timeoutMs = 10_000,
    what = 'events',
  ): Promise<void> {
    if (predicate(this.events)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      )
      this.waiters.push({
        match: () => predicate(this.events),
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  of<K extends CapturedEvent['kind']>(kind: K): Extract<CapturedEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<CapturedEvent, { kind: K }> => e.kind === kind)
  }
}

export function startCapture(input: CollectorConfigInput): {
  capture: KernelCapture
  sink: RecordingSink
} {
  const sink = new RecordingSink()
  // Counters are read by the tests themselves (pollCounters), not on a timer.
  const config = loadCollectorConfig({ counterIntervalMs: '3600000', flushMs: '10', ...input }, {})
  const capture = KernelCapture.start(config, sink, createLogger('test', 'warn'))
  return { capture, sink }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** The kernel's fdinfo text (map_type, max_entries, map_id…) of each BPF map this process holds. */
export function ownBpfMaps(): string[] {
  const infos: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-map') continue
      infos.push(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
    } catch {
      // closed between the listing and the read
    }
  }
  return infos
}

/**
 * Whether the kernel's cgroup → slot map of this process's syscall capture holds `cgroupId`:
 * read from the kernel (the map among this process's own BPF map fds, by bpftool), not from
 * the collector's bookkeeping, and not from another process's capture.
 */
export function kernelSyscallSlot(cgroupId: number): boolean {
  const key = Buffer.alloc(8)
  key.writeBigUInt64LE(BigInt(cgroupId))
  const keyBytes = [...key].map(String)
  let found = false
  for (const info of ownBpfMaps()) {
    const id = /^map_id:\s*(\d+)$/m.exec(info)?.[1]
    if (!id) continue
    const shown = JSON.parse(
      execFileSync('bpftool', ['-j', 'map', 'show', 'id', id], { encoding: 'utf8' }),
    ) as { name?: string }
    // Kernel map names keep 15 characters of syscall_cgroup_slots.
    if (shown.name !== 'syscall_cgroup_') continue
    found = true
    try {
      execFileSync('bpftool', ['map', 'lookup', 'id', id, 'key', ...keyBytes], { stdio: 'pipe' })
      return true
    } catch {
      // Not in this map; a capture of an earlier test may still hold another.
    }
  }
  if (!found) throw new Error('this process has no syscall_cgroup_slots map open')
  return false
}
