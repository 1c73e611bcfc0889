import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeBatch, formatAddress, newDecodeErrors } from '../../src/events/decode.ts'
import {
  EVENT_TYPE,
  EXEC_FLAGS,
  FILE_ACCESS,
  FILE_FLAGS,
  FILE_OP,
  LAYOUTS,
} from '../../src/events/layout.generated.ts'
import type { ExecEvent, FileEvent, RecordEvent } from '../../src/events/types.ts'

type Layout = {
  size: number
  fields: Record<string, { offset: number; size: number; kind: string }>
}

/** Writes a record the way the kernel would, from the generated layout (test-only encoder). */
function record(
  layout: Layout,
  values: Record<string, number | bigint | string | Buffer>,
  size = layout.size,
): Buffer {
  const buf = Buffer.alloc(size)
  for (const [path, value] of Object.entries(values)) {
    const f = layout.fields[path]
    assert.ok(f, `no field ${path}`)
    if (typeof value === 'string') buf.write(value, f.offset, f.size, 'utf8')
    else if (Buffer.isBuffer(value)) value.copy(buf, f.offset)
    else if (f.kind === 'u64') buf.writeBigUInt64LE(BigInt(value), f.offset)
    else if (f.kind === 'u32') buf.writeUInt32LE(Number(value), f.offset)
    else if (f.kind === 'u16') buf.writeUInt16LE(Number(value), f.offset)
    else buf.writeUInt8(Number(value), f.offset)
  }
  return buf
}

/** Frames records as the native addon does: [u32 size][record][pad to 8]. */
function frame(...records: Buffer[]): Buffer {
  const parts: Buffer[] = []
  for (const r of records) {
    const head = Buffer.alloc(4)
    head.writeUInt32LE(r.length)
    parts.push(head, r, Buffer.alloc(((r.length + 7) & ~7) - r.length))
  }
  return Buffer.concat(parts)
}

const EXEC = LAYOUTS.ebf_exec_event_v1
const argv = Buffer.from('/bin/ls\0-la\0/tmp\0')

function execRecord(overrides: Record<string, number | string | Buffer> = {}): Buffer {
  const size = EXEC.fields.args.offset + argv.length
  return record(
    EXEC,
    {
      'header.type': EVENT_TYPE.EXEC,
      'header.version': 1,
      'header.size': size,
      'header.timestamp_ns': 2n ** 53n + 10n,
      'task.cgroup_id': 4242,
      'task.pid': 100,
      'task.tgid': 100,
      'task.ppid': 1,
      'task.uid': 1000,
      'task.comm': 'ls',
      parent_comm: 'bash',
      filename: '/bin/ls',
      args_size: argv.length,
      args_total: argv.length + 10,
      flags: EXEC_FLAGS.ARGS_TRUNCATED,
      args: argv,
      ...overrides,
    },
    size,
  )
}

describe('decodeBatch', () => {
  const cases: {
    name: string
    batch: () => Buffer
    validate: (events: RecordEvent[], errors: ReturnType<typeof newDecodeErrors>) => void
  }[] = [
    {
      name: 'an exec record with argv and flags',
      batch: () => frame(execRecord()),
      validate: (events, errors) => {
        assert.equal(events.length, 1)
        const e = events[0] as ExecEvent
        assert.equal(e.kind, 'exec')
        assert.deepEqual(e.args, ['/bin/ls', '-la', '/tmp'])
        assert.equal(e.filename, '/bin/ls')
        assert.equal(e.comm, 'ls')
        assert.equal(e.parentComm, 'bash')
        assert.equal(e.cgroupId, 4242)
        assert.equal(e.uid, 1000)
        assert.equal(e.argsTruncated, true)
        assert.equal(e.filenameTruncated, false)
        assert.equal(e.argsTotalBytes, argv.length + 10)
        assert.ok(Math.abs(e.bootNs - (2 ** 53 + 10)) <= 2, 'exact to 2 ns above 2^53')
        assert.deepEqual(errors, newDecodeErrors())
      },
    },
    {
      name: 'an unknown type is skipped and the next record still decodes',
      batch: () => {
        const unknown = Buffer.alloc(24)
        unknown.writeUInt16LE(999, 0)
        unknown.writeUInt16LE(1, 2)
        unknown.writeUInt32LE(24, 4)
        return frame(unknown, execRecord())
      },
      validate: (events, errors) => {
        assert.equal(events.length, 1)
        assert.equal(errors.unknown_type, 1)
      },
    },
    {
      name: 'a newer version of a known type is counted as unknown_version',
      batch: () => frame(execRecord({ 'header.version': 2 }), execRecord()),
      validate: (events, errors) => {
        assert.equal(events.length, 1)
        assert.equal(errors.unknown_version, 1)
      },
    },
    {
      name: 'a record claiming more bytes than its frame is short_record',
      batch: () => frame(execRecord({ 'header.size': 100_000 })),
      validate: (events, errors) => {
        assert.equal(events.length, 0)
        assert.equal(errors.short_record, 1)
      },
    },
    {
      name: 'argv longer than the record is short_record',
      batch: () => frame(execRecord({ args_size: 5000 })),
      validate: (events, errors) => {
        assert.equal(events.length, 0)
        assert.equal(errors.short_record, 1)
      },
    },
    {
      name: 'a frame running past the batch stops decoding as bad_frame',
      batch: () => frame(execRecord()).subarray(0, 100),
      validate: (events, errors) => {
        assert.equal(events.length, 0)
        assert.equal(errors.bad_frame, 1)
      },
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const out: RecordEvent[] = []
      const errors = newDecodeErrors()
      const n = decodeBatch(c.batch(), out, errors)
      assert.equal(n, out.length)
      c.validate(out, errors)
    })
  }
})

const FILE = LAYOUTS.ebf_file_event_v1

function fileRecord(path: string, access: number, op: number, flags: number): Buffer {
  const bytes = Buffer.from(`${path}\0`)
  const size = FILE.fields.path.offset + bytes.length
  return record(
    FILE,
    {
      'header.type': EVENT_TYPE.FILE,
      'header.version': 1,
      'header.size': size,
      'header.timestamp_ns': 5000n,
      'task.cgroup_id': 77,
      'task.pid': 300,
      'task.tgid': 300,
      'task.comm': 'cat',
      'key.cgroup_id': 77,
      'key.object': 0xabcdefn,
      'key.access': access,
      flags,
      path_size: bytes.length,
      access,
      op,
      path: bytes,
    },
    size,
  )
}

describe('decodeBatch: file records', () => {
  const cases: [string, Buffer, Partial<FileEvent> | undefined][] = [
    [
      'a read with its path, counted once',
      fileRecord('/etc/hosts', FILE_ACCESS.READ, FILE_OP.OPEN, 0),
      { path: '/etc/hosts', access: 'read', op: 'open', count: 1, repeat: false, tgid: 300 },
    ],
    [
      'a directory made under a joined name: "." and ".." resolved',
      fileRecord(
        '/srv/app/./tmp/../new//',
        FILE_ACCESS.CREATE,
        FILE_OP.MKDIR,
        FILE_FLAGS.PATH_JOINED | FILE_FLAGS.DIRECTORY,
      ),
      { path: '/srv/app/new', access: 'create', op: 'mkdir', directory: true },
    ],
    [
      'a cut path says so',
      fileRecord('/deep/er', FILE_ACCESS.EXEC, FILE_OP.EXEC, FILE_FLAGS.PATH_TRUNCATED),
      { path: '/deep/er', access: 'exec', pathTruncated: true },
    ],
    ['an unknown access kind is skipped', fileRecord('/x', 3, FILE_OP.OPEN, 0), undefined],
  ]
  for (const [name, rec, want] of cases)
    it(name, () => {
      const out: RecordEvent[] = []
      const errors = newDecodeErrors()
      decodeBatch(frame(rec), out, errors)
      if (!want) {
        assert.deepEqual(out, [])
        assert.equal(errors.short_record, 1)
        return
      }
      const e = out[0] as FileEvent
      assert.equal(e.kind, 'file')
      for (const [k, v] of Object.entries(want)) assert.deepEqual(e[k as keyof FileEvent], v, k)
      // The dedup key pairs later repeats with this record: the key bytes as they came.
      const key = FILE.fields.key
      assert.equal(e.key, rec.toString('latin1', key.offset, key.offset + key.size))
    })
})

describe('formatAddress', () => {
  const v6 = (hex: string) => Buffer.from(hex.replace(/:/g, ''), 'hex')
  for (const [bytes, family, want] of [
    [Buffer.from([127, 0, 0, 1]), 4, '127.0.0.1'],
    [v6('0000:0000:0000:0000:0000:0000:0000:0001'), 6, '::1'],
    [v6('2001:0db8:0000:0001:0000:0000:0000:0001'), 6, '2001:db8:0:1::1'],
    [v6('2001:0db8:0000:0000:0001:0000:0000:0001'), 6, '2001:db8::1:0:0:1'],
    [v6('fe80:0000:0000:0000:0000:0000:0000:0000'), 6, 'fe80::'],
    [v6('0000:0000:0000:0000:0000:ffff:0a00:0001'), 6, '::ffff:10.0.0.1'],
    [v6('2001:0db8:0001:0002:0003:0004:0005:6777'), 6, '2001:db8:1:2:3:4:5:6777'],
  ] as const) {
    it(`${want}`, () => assert.equal(formatAddress(bytes, 0, family), want))
  }
})
