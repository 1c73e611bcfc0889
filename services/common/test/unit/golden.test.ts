// Raw records captured from a real kernel (scripts/record-golden.ts) must keep decoding to the
// same events: a decoder change that misreads a field shows up here without root or BPF.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { decodeBatch, newDecodeErrors } from '../../src/events/decode.ts'
import { DEFAULT_SECURITY_SYSCALLS, syscallName } from '../../src/events/syscalls.ts'
import type { RecordEvent } from '../../src/events/types.ts'

const dir = join(import.meta.dirname, '../fixtures/golden')

describe('golden records from the kernel', () => {
  it('decode to their JSON snapshot', () => {
    const batch = readFileSync(join(dir, 'records.bin'))
    const want = JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8'), (_k, v) =>
      typeof v === 'string' && v.startsWith('bigint:') ? BigInt(v.slice(7)) : v,
    ) as RecordEvent[]
    const got: RecordEvent[] = []
    const errors = newDecodeErrors()
    decodeBatch(batch, got, errors, {
      stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [],
    })
    assert.deepEqual(errors, newDecodeErrors())
    assert.deepEqual(got, want)
    const kinds = new Set(got.map((e) => (e.kind === 'tcp' ? `tcp:${e.tcp}` : e.kind)))
    for (const k of ['exec', 'exit', 'fork', 'syscall', 'tcp:connect', 'tcp:accept', 'tcp:close']) {
      assert.ok(kinds.has(k), `a ${k} record is in the fixture`)
    }
  })
})
