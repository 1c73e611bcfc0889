// bench/proto: encode + decode of one EventBatch of ~1000 typical events, with protobufjs's
// static code (pbjs -t static-module, generated here into a temporary folder) against
// reflection (the .proto parsed at run time, what @ebbflow/proto uses), on one core. Also the collector's own path (decoded events → wire, written
// event by event) and the gzip'd bytes per event per family.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { familyOf, toWire, WallClock, writeEvent } from '@ebbflow/collector'
import type { CapturedEvent, Family } from '@ebbflow/common'
import { loadReflectionRoot, type pb } from '@ebbflow/proto'
import protobuf from 'protobufjs'
import { syntheticEvents } from '../../tests/integration/events-fixture.ts'

const EVENTS = 1000
const clock = new WallClock(1_764_000_000_000_000_000n)
const events = syntheticEvents(EVENTS)

const FIELD_NAME: Record<CapturedEvent['kind'], string> = {
  exec: 'exec',
  exit: 'exit',
  fork: 'fork',
  tcp: 'tcp',
  traffic: 'traffic',
  syscall: 'syscall',
  syscall_count: 'syscallCount',
  drops: 'drops',
  file: 'file',
}

function batchObject(list: CapturedEvent[]): Record<string, unknown> {
  const b: Record<string, unknown[] | string | number> = {
    node: 'node-a',
    collectorInstanceId: '0190f3c2-7b1e-7cc4-a3a1-6f3c3e2b9d10',
    bootId: 'b5d6d0c5-5a4e-4c3b-9f2d-1c0e8a7b6d5f',
    sequence: 1234,
    batchId: '0190f3c2-7b1e-7cc4-a3a1-6f3c3e2b9d10-ebbflow.exec.v1-1234',
  }
  for (const e of list) {
    const k = FIELD_NAME[e.kind]
    if (!b[k]) b[k] = []
    ;(b[k] as unknown[]).push(toWire(e, clock))
  }
  return b
}

const wire = batchObject(events)
const Reflected = loadReflectionRoot().lookupType('ebbflow.v1.EventBatch')
// Inside the repo so that the generated module resolves protobufjs/minimal.js.
const staticDir = mkdtempSync(join(import.meta.dirname, '.static-'))
let Static: typeof pb.v1.EventBatch
try {
  execFileSync(process.execPath, [
    join(import.meta.dirname, '../../proto/scripts/gen.ts'),
    '--static',
    staticDir,
  ])
  Static = (await import(join(staticDir, 'events.js'))).ebbflow.v1.EventBatch
} finally {
  rmSync(staticDir, { recursive: true, force: true })
}

function measure(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn()
  let n = 0
  const t0 = process.hrtime.bigint()
  while (Number(process.hrtime.bigint() - t0) < 1.5e9) {
    fn()
    n++
  }
  return Math.round((n * EVENTS) / (Number(process.hrtime.bigint() - t0) / 1e9))
}

const staticBytes = Static.encode(wire).finish()
const reflectedBytes = Reflected.encode(wire).finish()
if (Buffer.compare(Buffer.from(staticBytes), Buffer.from(reflectedBytes)) !== 0)
  throw new Error('static and reflection encodings differ')

const results = {
  static: {
    encodeEventsPerSecond: measure(() => Static.encode(wire).finish()),
    decodeEventsPerSecond: measure(() => Static.decode(staticBytes)),
    encodeDecodeEventsPerSecond: measure(() => Static.decode(Static.encode(wire).finish())),
  },
  reflection: {
    encodeEventsPerSecond: measure(() => Reflected.encode(wire).finish()),
    decodeEventsPerSecond: measure(() => Reflected.decode(reflectedBytes)),
    encodeDecodeEventsPerSecond: measure(() => Reflected.decode(Reflected.encode(wire).finish())),
  },
  // What the publisher does per event (reflection): convert (boot → wall time, enums, meta)
  // and write.
  collectorEncodeEventsPerSecond: measure(() => {
    const w = protobuf.Writer.create()
    for (const e of events) writeEvent(w, e, clock)
    w.finish()
  }),
}

// Bytes per event on the wire, per topic family, batches of 1000 events of that family.
const bytesPerEvent: Record<string, { raw: number; gzip: number }> = {}
const perFamily = new Map<Family, CapturedEvent[]>()
for (const e of syntheticEvents(9000)) {
  const f = familyOf(e)
  if (!perFamily.has(f)) perFamily.set(f, [])
  const l = perFamily.get(f)!
  if (l.length < 1000) l.push(e)
}
for (const [f, list] of perFamily) {
  const bytes = Static.encode(batchObject(list)).finish()
  bytesPerEvent[f] = {
    raw: Math.round((bytes.length / list.length) * 10) / 10,
    gzip: Math.round((gzipSync(bytes).length / list.length) * 10) / 10,
  }
}

const report = {
  bench: 'proto',
  node: process.version,
  eventsPerBatch: EVENTS,
  batchBytes: staticBytes.length,
  oneCore: results,
  bytesPerEvent,
  chosen: 'reflection',
}
const text = `${JSON.stringify(report, null, 2)}\n`
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/proto.json'), text)
process.stdout.write(text)
