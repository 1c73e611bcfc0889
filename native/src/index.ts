// Typed front of the native addon (build/ebbflow_native.node, `make -C native`).
// Every native error arrives as a NativeError with the errno name, the number, and the tail
// of libbpf's log (the verifier's message when the kernel refused a program).
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Features {
  ringbuf: boolean
  perfbuf: boolean
  btf: boolean
  cgroupSkb: boolean
  numPossibleCpus: number
  kernelRelease: string
}

export interface MapInfo {
  name: string
  type: number
  keySize: number
  valueSize: number
  maxEntries: number
}

export interface MapDump {
  keys: Buffer
  values: Buffer
  count: number
  keySize: number
  valueSize: number
  /** Per-CPU maps: each value is valueSize rounded up to 8, once per possible CPU. */
  perCpu: boolean
  numCpus: number
}

export interface BufferOptions {
  /** Bytes per batch handed to JavaScript (one record larger than that goes alone). Default 256 KiB. */
  batchBytes?: number
  /** Longest a record waits in a partial batch. Default 50 ms. */
  flushMs?: number
}

export interface PerfBufferOptions extends BufferOptions {
  /** Pages per CPU (a power of two). Default 64. */
  pageCount?: number
}

/** records: how many records the batch frames; lost: perf-buffer samples lost before it. */
export type BatchCallback = (batch: Buffer, records: number, lost: number) => void

export interface DrainStats {
  batches: number
  records: number
  bytes: number
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
  attach(prog: string, opts?: { cgroupPath?: string }): void
  openRingBuffer(map: string, opts: BufferOptions, onBatch: BatchCallback): void
  openPerfBuffer(map: string, opts: PerfBufferOptions, onBatch: BatchCallback): void
  mapDump(map: string): MapDump
  mapLookup(map: string, key: Buffer): Buffer | null
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void
  mapDelete(map: string, key: Buffer): boolean
  stats(): DrainStats
  close(): Promise<void>
}

interface Addon {
  BpfObject: new (path: string) => NativeBpfObject
  probeFeatures(): Features
  numPossibleCpus(): number
  bootTimeNs(): number
}

const addonPath = join(dirname(fileURLToPath(import.meta.url)), '../build/ebbflow_native.node')

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
  readonly code: string
  readonly errno: number
  readonly libbpfLog: string

  constructor(message: string, code: string, errno: number, libbpfLog: string, cause?: unknown) {
    super(message, { cause })
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
    const e = err as Error & { code?: string; errno?: number; libbpfLog?: string }
    if (typeof e?.code === 'string' && typeof e.errno === 'number') {
      throw new NativeError(e.message, e.code, e.errno, e.libbpfLog ?? '', err)
    }
    throw err
  }
}

/** One BPF object file: open → setGlobal/setMaxEntries → load → attach → open buffers → close. */
export class BpfObject {
  readonly path: string
  private readonly handle: NativeBpfObject

  private constructor(path: string, handle: NativeBpfObject) {
    this.path = path
    this.handle = handle
  }

  static open(path: string): BpfObject {
    return new BpfObject(
      path,
      wrap(() => new addon.BpfObject(path)),
    )
  }

  /** Writes a `const volatile` global before load; the size must match the variable's. */
  setGlobal(name: string, value: Buffer): void {
    wrap(() => this.handle.setGlobal(name, value))
  }
  setMaxEntries(map: string, n: number): void {
    wrap(() => this.handle.setMaxEntries(map, n))
  }
  setAutocreate(map: string, on: boolean): void {
    wrap(() => this.handle.setAutocreate(map, on))
  }
  setAutoload(prog: string, on: boolean): void {
    wrap(() => this.handle.setAutoload(prog, on))
  }
  load(): void {
    wrap(() => this.handle.load())
  }
  programs(): string[] {
    return wrap(() => this.handle.programs())
  }
  maps(): MapInfo[] {
    return wrap(() => this.handle.maps())
  }
  /** Tracepoint programs attach by their section; cgroup programs need cgroupPath. */
  attach(prog: string, opts?: { cgroupPath?: string }): void {
    wrap(() => this.handle.attach(prog, opts))
  }
  /** Starts a drain thread on a ring buffer map; onBatch runs on the JavaScript thread. */
  openRingBuffer(map: string, opts: BufferOptions, onBatch: BatchCallback): void {
    wrap(() => this.handle.openRingBuffer(map, opts, onBatch))
  }
  openPerfBuffer(map: string, opts: PerfBufferOptions, onBatch: BatchCallback): void {
    wrap(() => this.handle.openPerfBuffer(map, opts, onBatch))
  }
  mapDump(map: string): MapDump {
    return wrap(() => this.handle.mapDump(map))
  }
  mapLookup(map: string, key: Buffer): Buffer | null {
    return wrap(() => this.handle.mapLookup(map, key))
  }
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void {
    wrap(() => this.handle.mapUpdate(map, key, value, flags))
  }
  mapDelete(map: string, key: Buffer): boolean {
    return wrap(() => this.handle.mapDelete(map, key))
  }
  stats(): DrainStats {
    return this.handle.stats()
  }
  /**
   * Stops the drain threads, delivers every batch they still hold, detaches the programs and
   * closes the object. Idempotent; resolves when all of that is done.
   */
  close(): Promise<void> {
    return this.handle.close()
  }
}

export function probeFeatures(): Features {
  return addon.probeFeatures()
}

export function numPossibleCpus(): number {
  return addon.numPossibleCpus()
}

/** CLOCK_BOOTTIME in nanoseconds: the clock of every record's timestamp. */
export function bootTimeNs(): number {
  return addon.bootTimeNs()
}
