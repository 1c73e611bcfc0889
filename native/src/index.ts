// Typed front of the native addon (build/ebbflow_native.node, `make -C native`).
// Every native error arrives as a NativeError with the errno name, the number, and the tail
// of libbpf's log (the verifier's message when the kernel refused a program).
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * What the running kernel offers, probed: a map or program it accepts, a helper its verifier
 * knows, a field of its BTF. The Linux version each appeared in is in the collector's
 * kernel-support.ts, which says which event family needs which.
 */
export interface Features {
  /** BPF_MAP_TYPE_RINGBUF can be created (Linux 5.8+). */
  ringbuf: boolean
  /** /sys/kernel/btf/vmlinux is readable: CO-RE objects can load. */
  btf: boolean
  /** cgroup_skb programs load (Linux 4.10+; cgroup links 5.7+). */
  cgroupSkb: boolean
  /** The verifier knows bpf_get_current_task_btf (Linux 5.11+). */
  currentTaskBtf: boolean
  /** struct sock_cgroup_data holds a cgroup pointer (Linux 5.15+). */
  sockCgroupPointer: boolean
  /** The verifier knows bpf_loop (Linux 5.17+). */
  bpfLoop: boolean
  /** The verifier knows bpf_find_vma (Linux 5.17+). */
  findVma: boolean
  numPossibleCpus: number
  kernelRelease: string
}

export interface MapInfo {
  name: string
  /** enum bpf_map_type */
  type: number
  keySize: number
  valueSize: number
  maxEntries: number
}

export interface MapDump {
  /** count keys of keySize bytes, back to back. */
  keys: Buffer
  /** count values, back to back: valueSize bytes each, or for per-CPU maps valueSize rounded up to 8, times numCpus. */
  values: Buffer
  count: number
  keySize: number
  valueSize: number
  perCpu: boolean
  /** Possible CPUs for per-CPU maps, else 1. */
  numCpus: number
}

export interface AttachOptions {
  /**
   * cgroup v2 directory for cgroup programs (cgroup_skb/ingress|egress, ...). Required for them.
   * They attach as a cgroup link, which detaches on close() or when the process dies.
   */
  cgroupPath?: string
}

export interface BufferOptions {
  /** Bytes per batch handed to JavaScript (one record larger than that goes alone). Default 256 KiB. */
  batchBytes?: number
  /** Longest the first record of a batch waits before the batch is handed over. Default 50 ms. */
  flushMs?: number
}

/**
 * One batch of records, framed little-endian as: u32 size, the record, zeros up to the next
 * multiple of 8 of size; the next frame starts at offset + 4 + round_up(size, 8).
 * records: how many frames the batch holds. lost: records the drain took from the kernel but
 * could not keep (out of memory) since the previous batch; records the kernel could not hand
 * over are the BPF side's to count. A batch may hold no records and only report lost ones.
 * The batch's bytes are valid only during the call: the drain refills the same memory with the
 * next batch (no new Buffer per batch for the garbage collector to find). Copy what you keep.
 */
export type RingBatchCallback = (batch: Buffer, records: number, lost: number) => void

export interface DrainStats {
  batches: number
  records: number
  bytes: number
  /** Records the drains took from the kernel but could not keep (out of memory). */
  lost: number
}

interface NativeBpfObject {
  setGlobal(name: string, value: Buffer): void
  setMaxEntries(map: string, n: number): void
  setAutocreate(map: string, on: boolean): void
  setAutoload(prog: string, on: boolean): void
  load(): void
  programs(): string[]
  maps(): MapInfo[]
  attach(prog: string, opts?: AttachOptions): void
  openRingBuffer(map: string, opts: BufferOptions, onBatch: RingBatchCallback): void
  mapDump(map: string): MapDump
  mapLookup(map: string, key: Buffer): Buffer | null
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void
  mapDelete(map: string, key: Buffer): boolean
  stats(): DrainStats
  close(): void
}

interface Addon {
  BpfObject: new (path: string) => NativeBpfObject
  probeFeatures(): Features
  numPossibleCpus(): number
  bootTimeNs(): number
}

/** Where the addon is; `make -C native` builds it. */
export const addonPath = join(
  dirname(fileURLToPath(import.meta.url)),
  '../build/ebbflow_native.node',
)

function loadAddon(): Addon {
  try {
    return createRequire(import.meta.url)(addonPath) as Addon
  } catch (cause) {
    throw new Error(
      `the native addon is not built (${addonPath}): run \`make -C native\` or scripts/setup.sh`,
      { cause },
    )
  }
}

const addon = loadAddon()

export class NativeError extends Error {
  /** errno name: 'EPERM', 'EACCES' (the verifier refused), 'ENOENT', ... */
  readonly code: string
  readonly errno: number
  /** The last ~16 KiB libbpf logged during the failed call (the verifier's log on load). */
  readonly libbpfLog: string

  constructor(
    message: string,
    code: string,
    errno: number,
    libbpfLog: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'NativeError'
    this.code = code
    this.errno = errno
    this.libbpfLog = libbpfLog
  }
}

function wrap<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    const e = err as {
      message?: unknown
      code?: unknown
      errno?: unknown
      libbpfLog?: unknown
    } | null
    if (
      typeof e?.code === 'string' &&
      typeof e.errno === 'number' &&
      typeof e.message === 'string'
    ) {
      throw new NativeError(
        e.message,
        e.code,
        e.errno,
        typeof e.libbpfLog === 'string' ? e.libbpfLog : '',
        { cause: err },
      )
    }
    throw err
  }
}

/**
 * One BPF object file: open → setGlobal / setMaxEntries / setAutocreate / setAutoload → load →
 * attach → openRingBuffer → close.
 *
 * Each open buffer has its own drain thread and keeps the process alive (like an open socket)
 * until close(). An object dropped without close() is closed when garbage-collected, dropping
 * batches not yet delivered.
 */
export class BpfObject {
  readonly path: string
  readonly #handle: NativeBpfObject

  private constructor(path: string, handle: NativeBpfObject) {
    this.path = path
    this.#handle = handle
  }

  static open(path: string): BpfObject {
    return new BpfObject(
      path,
      wrap(() => new addon.BpfObject(path)),
    )
  }

  /** Writes a `const volatile` (or .data/.bss) global before load; the size must match exactly. */
  setGlobal(name: string, value: Buffer): void {
    wrap(() => this.#handle.setGlobal(name, value))
  }
  setMaxEntries(map: string, n: number): void {
    wrap(() => this.#handle.setMaxEntries(map, n))
  }
  setAutocreate(map: string, on: boolean): void {
    wrap(() => this.#handle.setAutocreate(map, on))
  }
  setAutoload(prog: string, on: boolean): void {
    wrap(() => this.#handle.setAutoload(prog, on))
  }
  /** On failure the NativeError's message ends with the tail of the verifier's log. */
  load(): void {
    wrap(() => this.#handle.load())
  }
  programs(): string[] {
    return wrap(() => this.#handle.programs())
  }
  maps(): MapInfo[] {
    return wrap(() => this.#handle.maps())
  }
  /** tracepoint, raw_tp and tp_btf programs attach by their section; cgroup programs need cgroupPath. */
  attach(prog: string, opts?: AttachOptions): void {
    wrap(() => this.#handle.attach(prog, opts))
  }
  /** Starts a drain thread on a ring buffer map; onBatch runs on the JavaScript thread, once per batch. */
  openRingBuffer(map: string, opts: BufferOptions, onBatch: RingBatchCallback): void {
    wrap(() => this.#handle.openRingBuffer(map, opts, onBatch))
  }
  /** Every entry (batch lookup where the kernel has it, iteration otherwise). */
  mapDump(map: string): MapDump {
    return wrap(() => this.#handle.mapDump(map))
  }
  /** null when the key is absent. Per-CPU maps give valueSize rounded up to 8, times numCpus. */
  mapLookup(map: string, key: Buffer): Buffer | null {
    return wrap(() => this.#handle.mapLookup(map, key))
  }
  /** flags: BPF_ANY (0, the default), BPF_NOEXIST (1), BPF_EXIST (2). */
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void {
    wrap(() => this.#handle.mapUpdate(map, key, value, flags))
  }
  /** false when the key was absent. */
  mapDelete(map: string, key: Buffer): boolean {
    return wrap(() => this.#handle.mapDelete(map, key))
  }
  /** Totals over this object's buffers, closed ones included. */
  stats(): DrainStats {
    return this.#handle.stats()
  }
  /**
   * Detaches the programs, delivers what the drain threads still hold (onBatch may run inside
   * close()), joins the threads and closes the object. Idempotent.
   *
   * All of it happens before close() returns; the returned promise is already settled, for
   * callers that await it. It rejects with the first error an onBatch threw during the final
   * delivery (the teardown still completes).
   */
  close(): Promise<void> {
    try {
      this.#handle.close()
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }
}

export function probeFeatures(): Features {
  return wrap(() => addon.probeFeatures())
}

export function numPossibleCpus(): number {
  return wrap(() => addon.numPossibleCpus())
}

/** CLOCK_BOOTTIME in nanoseconds: the clock of bpf_ktime_get_boot_ns(), so of record timestamps. */
export function bootTimeNs(): number {
  return addon.bootTimeNs()
}
