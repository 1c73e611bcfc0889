// The native addon against the real kernel (as root): loads test/fixtures/*.bpf.c, drives
// their tracepoint with getppid() calls of this process (process.ppid makes one per read),
// and checks what arrives through the ring buffer drains, the maps, the errors and the
// teardown.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const fixture = (name: string) => join(nativeDir, 'build/fixtures', `${name}.bpf.o`)
const indexPath = join(nativeDir, 'src/index.ts')
const isRoot = process.getuid?.() === 0
const skip = isRoot ? false : 'needs root (real BPF)'

// Builds the addon and the fixtures before the module that loads the addon is imported.
if (isRoot)
  execFileSync('make', ['-s', '-C', nativeDir, 'all', 'test-fixtures'], { stdio: 'inherit' })
const native = isRoot ? await import('../src/index.ts') : undefined
type Native = typeof import('../src/index.ts')
type Obj = import('../src/index.ts').BpfObject
const n = (): Native => native as Native

const RECORD_SIZE = 24
const MARKER = 0xebbf10e5ebbf10e5n
const SOURCE_RING = 1
const BPF_NOEXIST = 1

interface Rec {
  tgid: number
  source: number
  seq: bigint
  marker: bigint
  size: number
}

/** Splits a batch into its records, checking the framing: u32 size, bytes, zeros to a multiple of 8. */
function frames(batch: Buffer): Rec[] {
  const out: Rec[] = []
  let at = 0
  while (at < batch.length) {
    const size = batch.readUInt32LE(at)
    const padded = (size + 7) & ~7
    assert.ok(at + 4 + padded <= batch.length, `frame at ${at} runs past the batch`)
    for (let i = size; i < padded; i++) assert.equal(batch[at + 4 + i], 0, 'padding is zero')
    const rec = at + 4
    out.push({
      tgid: batch.readUInt32LE(rec),
      source: batch.readUInt32LE(rec + 4),
      seq: batch.readBigUInt64LE(rec + 8),
      marker: batch.readBigUInt64LE(rec + 16),
      size,
    })
    at = rec + padded
  }
  assert.equal(at, batch.length, 'the batch ends with a whole frame')
  return out
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v)
  return b
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(v)
  return b
}

function getppidTimes(times: number): void {
  let sum = 0
  for (let i = 0; i < times; i++) sum += process.ppid
  assert.ok(sum > 0)
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** This process's BPF objects, links and perf events, by their file descriptors. */
function bpfFds(): number {
  let count = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/^anon_inode:(bpf-|\[perf_event\])/.test(readlinkSync(`/proc/self/fd/${fd}`))) count++
    } catch {
      // closed while listing
    }
  }
  return count
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The counter fixture, set to watch this process, loaded and attached. */
function openCounter(configure?: (o: Obj) => void) {
  const o = n().BpfObject.open(fixture('counter'))
  o.setGlobal('target_tgid', u32(process.pid))
  o.setAutocreate('spare', false)
  configure?.(o)
  o.load()
  o.attach('handle_getppid')
  return o
}

/** Sums one slot of a per-CPU u64 array over every CPU. */
function perCpuSum(o: Obj, map: string, slot: number): bigint {
  const value = o.mapLookup(map, u32(slot))
  assert.ok(value)
  let total = 0n
  for (let at = 0; at < value.length; at += 8) total += value.readBigUInt64LE(at)
  return total
}

/** Runs a module script in a child node, returns its exit code, signal, stdout and stderr. */
function runChild(
  script: string,
  opts: { prefix?: string[]; nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<{
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  ms: number
}> {
  const started = Date.now()
  const argv = [
    ...(opts.prefix ?? []),
    process.execPath,
    ...(opts.nodeArgs ?? []),
    '--input-type=module',
    '-e',
    script,
  ]
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15000)
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

describe('native addon', { skip }, () => {
  test('probeFeatures sees this kernel', () => {
    const f = n().probeFeatures()
    // Every feature the BPF objects need is here (Linux 6.x); the collector's kernel-support
    // tests cover what a kernel without them is told.
    for (const feature of [
      'ringbuf',
      'btf',
      'cgroupSkb',
      'currentTaskBtf',
      'sockCgroupPointer',
      'bpfLoop',
      'findVma',
    ] as const)
      assert.equal(f[feature], true, feature)
    assert.equal(f.numPossibleCpus, n().numPossibleCpus())
    assert.ok(f.numPossibleCpus >= 1)
    assert.match(f.kernelRelease, /^\d+\.\d+/)
  })

  test('open, setGlobal and lifecycle errors are NativeErrors with errno names', () => {
    const { BpfObject, NativeError } = n()
    assert.throws(
      () => BpfObject.open(join(nativeDir, 'build/fixtures/absent.bpf.o')),
      (e: unknown) =>
        e instanceof NativeError && e.code === 'ENOENT' && /absent\.bpf\.o/.test(e.message),
    )
    const o = BpfObject.open(fixture('counter'))
    try {
      assert.deepEqual(o.programs(), ['handle_getppid', 'handle_egress'])
      assert.throws(
        () => o.setGlobal('target_tgid', Buffer.alloc(8)),
        (e: unknown) =>
          e instanceof NativeError && e.code === 'EINVAL' && /4 bytes.*8/.test(e.message),
      )
      assert.throws(() => o.setGlobal('no_such_global', u32(1)), {
        name: 'NativeError',
        code: 'ENOENT',
      })
      assert.throws(() => o.setMaxEntries('no_such_map', 1), {
        name: 'NativeError',
        code: 'ENOENT',
      })
      assert.throws(() => o.mapDump('counts'), /not loaded yet/)
      o.setGlobal('seq', u64(1000n)) // a .bss global works as well
      o.setAutocreate('spare', false)
      o.load()
      assert.throws(() => o.setGlobal('target_tgid', u32(1)), {
        code: 'EINVAL',
        message: /already loaded/,
      })
      assert.throws(() => o.mapDump('spare'), { code: 'ENOENT', message: /not created/ })
      assert.throws(() => o.mapDump('fifo'), { code: 'ENOTSUPP', message: /reading map fifo/ })
      assert.throws(() => o.attach('handle_egress'), { code: 'EINVAL', message: /cgroupPath/ })
      assert.throws(() => o.openRingBuffer('counts', {}, () => {}), {
        code: 'EINVAL',
        message: /not a ring buffer/,
      })
      assert.throws(() => o.openRingBuffer('ring', { batchBytes: -1 }, () => {}), TypeError)
    } finally {
      o.close()
    }
    assert.throws(() => o.programs(), { code: 'EBADF' })
  })

  test('a ring buffer delivers every record, in batches, with exact counts', async (t) => {
    const N = 1000
    const fdsBefore = bpfFds()
    const o = openCounter()
    t.after(() => o.close()) // an open buffer keeps the process alive: close even on failure
    const ring: Rec[] = []
    let ringBatches = 0
    let ringLost = 0
    o.openRingBuffer('ring', { batchBytes: 4096, flushMs: 20 }, (batch, records, lost) => {
      assert.ok(batch.length <= 4096, 'a batch stays within batchBytes')
      const recs = frames(batch)
      assert.equal(records, recs.length)
      ring.push(...recs)
      ringBatches++
      ringLost += lost
    })
    assert.throws(() => o.openRingBuffer('ring', {}, () => {}), { code: 'EBUSY' })

    getppidTimes(N)
    await waitFor('every record', () => ring.length >= N)
    await sleep(100) // nothing more may come
    assert.equal(ring.length, N)
    assert.equal(ringLost, 0)
    assert.ok(
      ringBatches >= Math.ceil((N * (4 + RECORD_SIZE)) / 4096),
      `ring came in ${ringBatches} batches`,
    )
    for (const r of ring) {
      assert.equal(r.tgid, process.pid)
      assert.equal(r.source, SOURCE_RING)
      assert.equal(r.marker, MARKER)
    }
    const seqs = ring.map((r) => Number(r.seq)).sort((a, b) => a - b)
    assert.deepEqual(
      seqs,
      Array.from({ length: N }, (_, i) => i),
    )
    assert.ok(ring.every((r) => r.size === RECORD_SIZE))

    const stats = o.stats()
    assert.equal(stats.records, N)
    assert.equal(stats.lost, 0)
    assert.equal(stats.batches, ringBatches)

    // Maps: the hash map by dump and lookup, the per-CPU array in the kernel's layout.
    const counts = o.mapDump('counts')
    assert.equal(counts.count, 1)
    assert.equal(counts.perCpu, false)
    assert.equal(counts.keys.readUInt32LE(0), process.pid)
    assert.equal(counts.values.readBigUInt64LE(0), BigInt(N))
    const percpu = o.mapDump('percpu_counts')
    assert.equal(percpu.perCpu, true)
    assert.equal(percpu.numCpus, n().numPossibleCpus())
    assert.equal(percpu.count, 2)
    assert.equal(percpu.values.length, 2 * 8 * percpu.numCpus)
    assert.equal(perCpuSum(o, 'percpu_counts', 0), BigInt(N))
    assert.equal(perCpuSum(o, 'percpu_counts', 1), 0n, 'no ring buffer reservation failed')

    assert.equal(o.mapLookup('counts', u32(process.pid))?.readBigUInt64LE(0), BigInt(N))
    assert.equal(o.mapLookup('counts', u32(1)), null)
    o.mapUpdate('counts', u32(1), u64(5n))
    assert.equal(o.mapLookup('counts', u32(1))?.readBigUInt64LE(0), 5n)
    assert.throws(() => o.mapUpdate('counts', u32(1), u64(6n), BPF_NOEXIST), { code: 'EEXIST' })
    assert.throws(() => o.mapUpdate('counts', u32(1), u32(6)), {
      code: 'EINVAL',
      message: /8-byte values/,
    })
    assert.throws(() => o.mapLookup('counts', u64(1n)), { code: 'EINVAL', message: /4-byte keys/ })
    assert.equal(o.mapDump('counts').count, 2)
    assert.equal(o.mapDelete('counts', u32(1)), true)
    assert.equal(o.mapDelete('counts', u32(1)), false)

    await o.close()
    await o.close() // idempotent
    assert.equal(bpfFds(), fdsBefore, 'close() released every map, program and link')
    getppidTimes(10)
    await sleep(100)
    assert.equal(ring.length, N, 'nothing arrives after close()')
    assert.equal(o.stats().records, N, 'stats survive close()')
  })

  test('close() in mid-stream delivers every record it counted', async (t) => {
    const o = openCounter()
    t.after(() => o.close())
    let delivered = 0
    o.openRingBuffer('ring', { batchBytes: 64 * 1024 }, (_b, records) => {
      delivered += records
    })
    // A worker of this process keeps calling getppid() while the main thread closes.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
       let stop = false
       parentPort.on('message', () => { stop = true; parentPort.close() })
       ;(async () => {
         while (!stop) {
           for (let i = 0; i < 1000; i++) process.ppid
           await new Promise((r) => setImmediate(r))
         }
       })()`,
      { eval: true },
    )
    t.after(() => worker.terminate())
    await waitFor('a stream', () => delivered > 10_000)
    await o.close()
    worker.postMessage('stop')
    assert.equal(delivered, o.stats().records)
    assert.equal(o.stats().lost, 0)
  })

  test('a batch waits at most flushMs after its first record', async () => {
    const o = openCounter()
    const batches: { records: number; at: number }[] = []
    try {
      o.openRingBuffer('ring', { flushMs: 30 }, (_batch, records) =>
        batches.push({ records, at: Date.now() }),
      )
      await sleep(50)
      const start = Date.now()
      getppidTimes(3)
      await waitFor('the batch', () => batches.length > 0, 2000)
      assert.deepEqual(
        batches.map((b) => b.records),
        [3],
      )
      assert.ok((batches[0]?.at ?? 0) - start < 1000)
    } finally {
      o.close()
    }
  })

  test('close() delivers the last partial batch before it returns', async (t) => {
    const o = openCounter()
    t.after(() => o.close())
    let got = 0
    let batches = 0
    o.openRingBuffer('ring', { flushMs: 60_000, batchBytes: 1 << 20 }, (batch, records) => {
      assert.equal(frames(batch).length, records)
      got += records
      batches++
    })
    getppidTimes(5)
    await sleep(200)
    assert.equal(batches, 0, 'held back by flushMs and batchBytes')
    await o.close()
    assert.equal(batches, 1)
    assert.equal(got, 5)
  })

  test('batches are copied into one Buffer per drain, not handed over as a new Buffer each', async (t) => {
    const o = openCounter()
    t.after(() => o.close())
    const memories = new Set<ArrayBufferLike>()
    let got = 0
    let batches = 0
    o.openRingBuffer('ring', { batchBytes: 256, flushMs: 5 }, (batch, records) => {
      assert.equal(frames(batch).length, records)
      memories.add(batch.buffer)
      got += records
      batches++
    })
    getppidTimes(200)
    await waitFor('every record', () => got >= 200)
    assert.ok(batches > 10, `${batches} batches`)
    // Each new Buffer counts towards V8's next full collection; a refilled one does not.
    assert.equal(memories.size, 1, 'every batch in the same memory')
  })

  test('a batch delivered inside onBatch (close() from the callback) gets its own memory', async (t) => {
    const o = openCounter()
    t.after(() => o.close())
    const outer: { before?: Buffer; after?: Buffer } = {}
    let nested = 0
    o.openRingBuffer('ring', { batchBytes: 64, flushMs: 5 }, (batch, records) => {
      if (outer.before) {
        nested += records
        return
      }
      outer.before = Buffer.from(batch)
      getppidTimes(20) // records the drain still holds when close() delivers them
      void o.close()
      outer.after = Buffer.from(batch)
    })
    getppidTimes(1)
    await waitFor('the first batch', () => outer.after !== undefined)
    assert.ok(nested > 0, 'close() delivered batches while the first was being read')
    assert.deepEqual(outer.after, outer.before, 'the outer batch was not overwritten')
  })

  test('a slow consumer blocks the drain: bounded queue, the kernel side counts the rest', async () => {
    const N = 5000
    // 4 KiB of ring buffer holds 128 records of 24 bytes (+8 bytes of ring header each).
    const o = openCounter((obj) => obj.setMaxEntries('ring', 4096))
    let delivered = 0
    let batches = 0
    try {
      // batchBytes 1: every record is a batch of its own, so the 64-batch queue fills fast.
      o.openRingBuffer('ring', { batchBytes: 1 }, (_batch, records) => {
        delivered += records
        batches++
      })
      // JavaScript is busy here and takes no batch: the drain thread must block, not buffer.
      getppidTimes(N)
      await waitFor('every record delivered or counted as dropped', () => {
        return BigInt(delivered) + perCpuSum(o, 'percpu_counts', 1) === BigInt(N)
      })
      const dropped = Number(perCpuSum(o, 'percpu_counts', 1))
      assert.ok(dropped > 0, 'the ring buffer filled up')
      assert.equal(batches, delivered)
      // 64 queued + 1 in hand + 128 in the ring, with some slack for what the thread took
      // before the loop started.
      assert.ok(delivered <= 64 + 1 + 128 + 16, `delivered ${delivered}: the queue is bounded`)
    } finally {
      o.close()
    }
  })

  // Under a flood the drain thread refills the queue as fast as JavaScript empties it: a wake
  // that delivered until the queue was empty held the event loop (the producer's sockets,
  // timers) for as long as the flood lasted. A wake now lets the loop turn after ~10 ms.
  test('a wake lets the event loop turn while batches are still queued', async () => {
    const N = 3000
    // A 4 KiB ring (128 records): the kernel counts the rest, so the test takes well under 1 s.
    const o = openCounter((obj) => obj.setMaxEntries('ring', 4096))
    let delivered = 0
    let atTimer = -1
    try {
      // batchBytes 1: a batch per record; each takes onBatch 2 ms, so 64 queued take 128 ms.
      o.openRingBuffer('ring', { batchBytes: 1 }, () => {
        if (delivered++ === 0)
          setTimeout(() => {
            atTimer = delivered
          }, 0)
        const until = performance.now() + 2
        while (performance.now() < until) {}
      })
      getppidTimes(N) // JavaScript busy: the queue fills (64 batches) before the first wake
      await waitFor('the timer set in the first batch fired', () => atTimer >= 0, 30_000)
      await waitFor(
        'every record delivered or counted as dropped',
        () => BigInt(delivered) + perCpuSum(o, 'percpu_counts', 1) === BigInt(N),
        30_000,
      )
      assert.ok(delivered >= 64, `only ${delivered} delivered: the queue never filled`)
      // 10 ms of 2 ms batches per turn; a few turns before the timers phase comes round.
      assert.ok(atTimer < 32, `the timer waited for ${atTimer} batches`)
    } finally {
      o.close()
    }
  })

  test('the hand-off queue is bounded by bytes too: 4 MiB of large batches, the kernel counts the rest', async () => {
    const N = 500_000
    // 1 MiB of ring: 32,768 records of 24 bytes (+8 of ring header); framed, each takes 28.
    const o = openCounter((obj) => obj.setMaxEntries('ring', 1 << 20))
    const batchBytes = 128 * 1024
    const perBatch = Math.ceil(batchBytes / 28)
    let delivered = 0
    try {
      o.openRingBuffer('ring', { batchBytes, flushMs: 50 }, (_batch, records) => {
        delivered += records
      })
      getppidTimes(N)
      await waitFor(
        'every record delivered or counted as dropped',
        () => BigInt(delivered) + perCpuSum(o, 'percpu_counts', 1) === BigInt(N),
        30_000,
      )
      assert.ok(perCpuSum(o, 'percpu_counts', 1) > 0n, 'the ring buffer filled up')
      // 31 batches of 131,096 bytes fit in 4 MiB (64 would by count alone), + 1 in hand, + the
      // ring, + one the thread took before the loop started.
      const bound = (31 + 2) * perBatch + 32_768
      assert.ok(
        delivered <= bound,
        `delivered ${delivered} > ${bound}: the queue is bounded by bytes`,
      )
    } finally {
      o.close()
    }
  })

  test('close() rejects with what onBatch threw during the final delivery, and still closes', async () => {
    const o = openCounter()
    o.openRingBuffer('ring', { flushMs: 60_000, batchBytes: 1 << 20 }, () => {
      throw new Error('late boom')
    })
    getppidTimes(3)
    await sleep(100)
    await assert.rejects(o.close(), /late boom/)
    assert.throws(() => o.programs(), { code: 'EBADF' })
    assert.equal(o.stats().records, 3)
  })

  test('a verifier rejection carries the verifier log; setAutoload skips the program', () => {
    const { BpfObject, NativeError } = n()
    const bad = BpfObject.open(fixture('rejected'))
    try {
      assert.throws(
        () => bad.load(),
        (e: unknown) => {
          assert.ok(e instanceof NativeError)
          assert.equal(e.code, 'EACCES')
          assert.equal(e.errno, 13)
          assert.match(e.libbpfLog, /BEGIN PROG LOAD LOG/)
          assert.match(e.libbpfLog, /R0 invalid mem access 'map_value_or_null'/)
          assert.match(e.message, /R0 invalid mem access 'map_value_or_null'/)
          assert.match(e.message, /handle_unchecked/)
          return true
        },
      )
    } finally {
      bad.close()
    }
    const fine = BpfObject.open(fixture('rejected'))
    try {
      fine.setAutoload('handle_unchecked', false)
      fine.load()
      fine.attach('handle_fine')
      assert.throws(() => fine.attach('handle_unchecked'), {
        code: 'ENOENT',
        message: /not loaded/,
      })
    } finally {
      fine.close()
    }
  })

  test('without CAP_BPF/CAP_PERFMON, load fails with EPERM naming what is missing', async () => {
    const script = `
      const { BpfObject } = await import(${JSON.stringify(indexPath)})
      try { BpfObject.open(${JSON.stringify(fixture('counter'))}).load(); console.log(JSON.stringify({ loaded: true })) }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }`
    const r = await runChild(script, {
      prefix: ['setpriv', '--bounding-set=-all', '--inh-caps=-all'],
    })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.equal(out.name, 'NativeError')
    assert.equal(out.code, 'EPERM')
    assert.match(out.message, /needs root, or CAP_BPF and CAP_PERFMON/)
    assert.match(out.message, /lacks CAP_BPF, CAP_PERFMON/)
  })

  describe('processes end cleanly', () => {
    const prelude = (onRingBatch = '(b, n) => { ring += n }') => `
      const { BpfObject } = await import(${JSON.stringify(indexPath)})
      const pid = Buffer.alloc(4); pid.writeUInt32LE(process.pid)
      const o = BpfObject.open(${JSON.stringify(fixture('counter'))})
      o.setGlobal('target_tgid', pid)
      o.setAutocreate('spare', false)
      o.load()
      o.attach('handle_getppid')
      let ring = 0
      o.openRingBuffer('ring', { flushMs: 10 }, ${onRingBatch})
      for (let i = 0; i < 100; i++) process.ppid`

    test('after close(), the event loop empties and the process exits by itself', async () => {
      const r = await runChild(`${prelude()}
        const wait = setInterval(() => {
          if (ring < 100) return
          clearInterval(wait)
          o.close()
          console.log(JSON.stringify({ ring }))
        }, 5)`)
      assert.equal(r.signal, null, r.stderr)
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(JSON.parse(r.stdout), { ring: 100 })
    })

    test('process.exit() with drains running does not hang or crash', async () => {
      const r = await runChild(`${prelude()}
        setTimeout(() => { for (let i = 0; i < 1000; i++) process.ppid; process.exit(7) }, 50)`)
      assert.equal(r.signal, null, r.stderr)
      assert.equal(r.code, 7, r.stderr)
      assert.ok(r.ms < 10_000)
    })

    test('an onBatch that throws is an uncaught exception, and the process still ends cleanly', async () => {
      const r = await runChild(prelude("() => { throw new Error('boom from onBatch') }"))
      assert.equal(r.signal, null, r.stderr)
      assert.equal(r.code, 1)
      assert.match(r.stderr, /boom from onBatch/)
    })

    test('objects dropped without close() are closed by their finalizers, drains included', async () => {
      const r = await runChild(
        `
        const { BpfObject } = await import(${JSON.stringify(indexPath)})
        const pid = Buffer.alloc(4); pid.writeUInt32LE(process.pid)
        for (let i = 0; i < 20; i++) {
          let o = BpfObject.open(${JSON.stringify(fixture('counter'))})
          o.setGlobal('target_tgid', pid)
          o.setAutocreate('spare', false)
          o.load()
          o.attach('handle_getppid')
          // A callback that does not hold the object lets it be collected while its drain runs.
          if (i % 2) o.openRingBuffer('ring', { flushMs: 5 }, () => {})
          o = null
        }
        for (let i = 0; i < 10; i++) process.ppid
        for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)) }
        const { readdirSync, readlinkSync } = await import('node:fs')
        const left = readdirSync('/proc/self/fd').filter((fd) => {
          try { return /^anon_inode:(bpf-|\\[perf_event\\])/.test(readlinkSync('/proc/self/fd/' + fd)) } catch { return false }
        }).length
        console.log(JSON.stringify({ left }))`,
        { nodeArgs: ['--expose-gc'] },
      )
      // Exiting by itself also shows the finalizers released the drains' hold on the event loop.
      assert.equal(r.signal, null, 'the process ended by itself')
      assert.equal(r.code, 0, r.stderr)
      // Every object's maps, programs and links were closed by the finalizers.
      assert.deepEqual(JSON.parse(r.stdout), { left: 0 })
    })
  })

  describe('cgroup_skb', () => {
    let cgroup = ''
    let peer: import('node:dgram').Socket | undefined
    let port = 0

    before(async () => {
      const line = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '))
      assert.ok(line, 'a cgroup v2 mount')
      cgroup = join(line.split(' ')[4] as string, `ebbflow-native-test-${process.pid}`)
      mkdirSync(cgroup)
      const dgram = await import('node:dgram')
      peer = dgram.createSocket('udp4')
      await new Promise<void>((r) => peer?.bind(0, '127.0.0.1', () => r()))
      port = peer.address().port
    })

    after(() => {
      peer?.close()
      if (cgroup) rmdirSync(cgroup)
    })

    /** A child that joins the cgroup, then sends `count` datagrams to the peer. */
    async function sendFromCgroup(count: number): Promise<void> {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `process.stdin.once('data', async () => {
             const s = require('node:dgram').createSocket('udp4')
             for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send('x', ${port}, '127.0.0.1', r))
             s.close(); process.stdin.destroy()
           })`,
        ],
        { stdio: ['pipe', 'inherit', 'inherit'] },
      )
      writeFileSync(join(cgroup, 'cgroup.procs'), String(child.pid))
      child.stdin.write('go\n')
      const code = await new Promise((r) => child.on('exit', r))
      assert.equal(code, 0)
    }

    function attachedHere(): unknown[] {
      return JSON.parse(
        execFileSync('bpftool', ['cgroup', 'show', cgroup, '-j'], { encoding: 'utf8' }).trim() ||
          '[]',
      )
    }

    test('counts egress packets of the cgroup (a cgroup link), detaches on close', async () => {
      const o = n().BpfObject.open(fixture('counter'))
      try {
        o.setAutocreate('spare', false)
        o.load()
        o.attach('handle_egress', { cgroupPath: cgroup })
        assert.equal(attachedHere().length, 1)
        await sendFromCgroup(10)
        const packets = o.mapLookup('egress_packets', u32(0))?.readBigUInt64LE(0) ?? 0n
        assert.ok(packets >= 10n, `${packets} packets`)
      } finally {
        o.close()
      }
      assert.deepEqual(attachedHere(), [])
    })

    test('a missing cgroup is an error naming the program', () => {
      const o = n().BpfObject.open(fixture('counter'))
      try {
        o.setAutocreate('spare', false)
        o.load()
        assert.throws(() => o.attach('handle_egress', { cgroupPath: `${cgroup}/absent` }), {
          code: 'ENOENT',
          message: /handle_egress/,
        })
      } finally {
        o.close()
      }
    })
  })
})
