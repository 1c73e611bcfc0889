// bench/decode: decodeBatch alone, on batches framed exactly as the native addon frames them
// (records written from the generated layout), so the figure excludes the kernel and the
// producer. kernel-capture measures the same decoder on live batches.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  decodeBatch,
  EVENT_TYPE,
  LAYOUTS,
  newDecodeErrors,
  type RecordEvent,
} from '@ebbflow/common'

type Layout = (typeof LAYOUTS)[keyof typeof LAYOUTS]

function framedBatch(
  layout: Layout,
  type: number,
  count: number,
  fill: (record: Buffer) => number,
): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const record = Buffer.alloc(layout.size)
    const size = fill(record)
    record.writeUInt16LE(type, 0)
    record.writeUInt16LE(1, 2)
    record.writeUInt32LE(size, 4)
    record.writeBigUInt64LE(BigInt(1e12 + i), 8)
    const head = Buffer.alloc(4)
    head.writeUInt32LE(size)
    parts.push(head, record.subarray(0, size), Buffer.alloc(((size + 7) & ~7) - size))
  }
  return Buffer.concat(parts)
}

const EXEC = LAYOUTS.ebf_exec_event_v1
const argv = Buffer.from(
  ['/usr/bin/python3', '-m', 'http.server', '--bind', '127.0.0.1', '8080', ''].join('\0'),
)
const cases = {
  exec: framedBatch(EXEC, EVENT_TYPE.EXEC, 400, (r) => {
    r.write('python3', EXEC.fields['task.comm'].offset)
    r.write('/usr/bin/python3', EXEC.fields.filename.offset)
    r.writeUInt32LE(argv.length, EXEC.fields.args_size.offset)
    argv.copy(r, EXEC.fields.args.offset)
    return EXEC.fields.args.offset + argv.length
  }),
  exit: framedBatch(LAYOUTS.ebf_exit_event_v1, EVENT_TYPE.EXIT, 2000, (r) => {
    r.write('true', LAYOUTS.ebf_exit_event_v1.fields['task.comm'].offset)
    return LAYOUTS.ebf_exit_event_v1.size
  }),
  tcp: framedBatch(LAYOUTS.ebf_tcp_event_v1, EVENT_TYPE.TCP, 2000, (r) => {
    r.writeUInt16LE(2, LAYOUTS.ebf_tcp_event_v1.fields.family.offset)
    r.writeUInt8(3, LAYOUTS.ebf_tcp_event_v1.fields.kind.offset)
    return LAYOUTS.ebf_tcp_event_v1.size
  }),
  syscall: framedBatch(LAYOUTS.ebf_syscall_event_v1, EVENT_TYPE.SYSCALL, 600, (r) => {
    r.write('perl', LAYOUTS.ebf_syscall_event_v1.fields['task.comm'].offset)
    return LAYOUTS.ebf_syscall_event_v1.size
  }),
}

const results: Record<
  string,
  { eventsPerSecond: number; batchBytes: number; eventsPerBatch: number }
> = {}
for (const [name, batch] of Object.entries(cases)) {
  const errors = newDecodeErrors()
  const probe: RecordEvent[] = []
  const perBatch = decodeBatch(batch, probe, errors)
  for (let i = 0; i < 300; i++) decodeBatch(batch, [], errors)
  let n = 0
  const t0 = process.hrtime.bigint()
  while (Number(process.hrtime.bigint() - t0) < 2e9) n += decodeBatch(batch, [], errors)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (Object.values(errors).some((e) => e > 0))
    throw new Error(`${name}: decode errors ${JSON.stringify(errors)}`)
  results[name] = {
    eventsPerSecond: Math.round(n / seconds),
    batchBytes: batch.length,
    eventsPerBatch: perBatch,
  }
}
const report = {
  bench: 'decode',
  node: process.version,
  oneCore: results,
  target: { eventsPerSecond: 1_000_000 },
}
const text = `${JSON.stringify(report, null, 2)}\n`
mkdirSync(join(import.meta.dirname, '../reports'), { recursive: true })
writeFileSync(join(import.meta.dirname, '../reports/decode.json'), text)
process.stdout.write(text)
