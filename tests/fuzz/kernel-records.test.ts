// Fuzzes the decoder of raw kernel records (services/common/src/events/decode.ts): random
// bytes, frames with random headers around bodies of every record's size, and the golden batch
// captured from a real kernel cut short and mutated. The decoder must never throw, must account
// for every frame it walks (decoded or counted by reason), must keep the records before a cut
// exactly as the whole batch decodes them, and must finish every case quickly.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type DecodeErrors, decodeBatch, newDecodeErrors } from '@ebbflow/common/events/decode'
import { EVENT_TYPE, LAYOUTS } from '@ebbflow/common/events/layout.generated'
import { DEFAULT_SECURITY_SYSCALLS, syscallName } from '@ebbflow/common/events/syscalls'
import type { RecordEvent } from '@ebbflow/common/events/types'
import fc from 'fast-check'
import { fuzzProfile } from './profile.ts'

const golden = readFileSync(
  join(import.meta.dirname, '../../services/common/test/fixtures/golden/records.bin'),
)
const HDR = LAYOUTS.ebf_event_header
const options = { stringArgs: (nr: number) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [] }
/**
 * A case slower than this is a hang (the longest input is a few KiB and decodes in well under
 * a millisecond); the bound is wide because the machine is shared and a GC pause is not a hang.
 */
const CASE_BOUND_MS = 1000

/** Frames in a batch as the framing walk sees them (the harness's own walk of the format). */
function framesIn(batch: Uint8Array): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength)
  let n = 0
  for (let at = 0; at + 4 <= batch.length; ) {
    const size = view.getUint32(at, true)
    if (size < HDR.size || at + 4 + size > batch.length) return n + 1 // the broken one
    n++
    at += 4 + ((size + 7) & ~7)
  }
  return n
}

function total(e: DecodeErrors): number {
  return Object.values(e).reduce((a, b) => a + b, 0)
}

const stats = { cases: 0, slowestMs: 0, decoded: 0, skipped: 0 }

/** Decodes under the per-case bound and checks what every input must satisfy. */
function decodeChecked(batch: Buffer): { events: RecordEvent[]; errors: DecodeErrors } {
  const events: RecordEvent[] = []
  const errors = newDecodeErrors()
  const started = performance.now()
  const n = decodeBatch(batch, events, errors, options)
  const ms = performance.now() - started
  stats.cases++
  stats.slowestMs = Math.max(stats.slowestMs, ms)
  stats.decoded += n
  stats.skipped += total(errors)
  assert.ok(ms < CASE_BOUND_MS, `one case took ${ms.toFixed(1)} ms (${batch.length} bytes)`)
  assert.equal(n, events.length)
  // Every frame walked is decoded or counted; nothing is both, nothing is neither.
  assert.equal(n + total(errors), framesIn(batch))
  for (const e of events) {
    for (const [k, v] of Object.entries(e))
      if (typeof v === 'number') assert.ok(Number.isFinite(v) && v >= 0, `${e.kind}.${k} = ${v}`)
  }
  return { events, errors }
}

/** One frame: u32 size, a header (type, version, size, time), a body, zero padding to 8. */
const frame = fc
  .record({
    type: fc.oneof(
      fc.constantFrom(...Object.values(EVENT_TYPE)),
      fc.integer({ min: 0, max: 0xffff }),
    ),
    version: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 0xffff })),
    // Bodies around each record's real size, so the decoders behind the header run too.
    length: fc.oneof(
      fc.constantFrom(...Object.values(LAYOUTS).map((l) => l.size)),
      fc.integer({ min: 0, max: 5000 }),
    ),
    sizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -64, max: 64 })),
    frameDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -32, max: 32 })),
    seed: fc.integer(),
    fill: fc.constantFrom('random', 'zero', 'ones'),
  })
  .map((f) => {
    const len = Math.max(0, f.length)
    const rec = Buffer.alloc(len)
    if (f.fill === 'ones') rec.fill(0xff)
    if (f.fill === 'random') {
      let x = f.seed | 1
      for (let i = 0; i < len; i++) {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        rec[i] = x & 0xff
      }
    }
    if (len >= HDR.size) {
      rec.writeUInt16LE(f.type, HDR.fields.type.offset)
      rec.writeUInt16LE(f.version, HDR.fields.version.offset)
      rec.writeUInt32LE(Math.max(0, len + f.sizeDelta), HDR.fields.size.offset)
    }
    const out = Buffer.alloc(4 + ((len + 7) & ~7))
    out.writeUInt32LE(Math.max(0, len + f.frameDelta), 0)
    rec.copy(out, 4)
    return out
  })

describe('fuzzing the kernel record decoder', {
  timeout: fuzzProfile.soak ? 3_600_000 : 60_000,
}, () => {
  const runs = (ci: number, soak: number) => ({
    numRuns: fuzzProfile.cases(ci, soak),
    seed: fuzzProfile.seed,
  })

  it('takes random bytes without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        decodeChecked(Buffer.from(bytes))
      }),
      runs(3000, 300_000),
    )
  })

  it('takes frames with random headers and bodies of every record size', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 6 }), (frames) => {
        decodeChecked(Buffer.concat(frames))
      }),
      runs(3000, 300_000),
    )
  })

  it('decodes the records before a cut exactly as the whole batch does', () => {
    const whole = decodeChecked(golden)
    assert.deepEqual(whole.errors, newDecodeErrors())
    assert.ok(whole.events.length >= 3, `golden batch has ${whole.events.length} events`)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: golden.length }), (cut) => {
        const { events, errors } = decodeChecked(golden.subarray(0, cut))
        assert.deepEqual(events, whole.events.slice(0, events.length))
        // Only the cut frame can be missing, and only as a broken frame.
        assert.ok(errors.bad_frame <= 1 && total(errors) === errors.bad_frame)
      }),
      runs(golden.length + 1, 100_000),
    )
  })

  it('takes the golden batch with bytes changed, inserted and removed', () => {
    const edit = fc.oneof(
      fc.record({
        op: fc.constant('set' as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({
        op: fc.constant('insert' as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
    )
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = [...golden]
        for (const e of edits) {
          const at = e.at % (bytes.length + 1)
          if (e.op === 'set' && at < bytes.length) bytes[at] = e.byte
          if (e.op === 'insert') bytes.splice(at, 0, e.byte)
          if (e.op === 'delete') bytes.splice(at, 1)
        }
        decodeChecked(Buffer.from(bytes))
      }),
      runs(3000, 300_000),
    )
    fuzzProfile.report('kernel-records', { ...stats, crashes: 0, caseBoundMs: CASE_BOUND_MS })
  })
})
