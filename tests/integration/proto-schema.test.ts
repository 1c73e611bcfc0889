// ebbflow.v1 evolution rules (proto/README.md): the current descriptors against the last
// released ones (proto/released/ebbflow.v1.json), and the check itself on known breakages.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { compatibilityProblems, type DescriptorSnapshot, descriptorSnapshot } from '@ebbflow/proto'

const released = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../proto/released/ebbflow.v1.json'), 'utf8'),
) as DescriptorSnapshot

describe('ebbflow.v1 schema evolution', () => {
  it('the current schema is compatible with the last released one', () => {
    assert.deepEqual(compatibilityProblems(released, descriptorSnapshot()), [])
  })

  const edit = (f: (s: DescriptorSnapshot) => void) => {
    const s = structuredClone(released)
    f(s)
    return compatibilityProblems(released, s)
  }
  const cases: { name: string; change: (s: DescriptorSnapshot) => void; expect: RegExp | null }[] =
    [
      {
        name: 'a new optional field',
        change: (s) => {
          s.messages.Exec!.fields.cwd = { id: 11, type: 'string', label: 'optional' }
        },
        expect: null,
      },
      {
        name: 'a renumbered field',
        change: (s) => {
          s.messages.Exec!.fields.filename!.id = 42
        },
        expect: /Exec\.filename: number 5 → 42/,
      },
      {
        name: 'a changed type',
        change: (s) => {
          s.messages.Exit!.fields.exit_code!.type = 'uint32'
        },
        expect: /Exit\.exit_code: type int32 → uint32/,
      },
      {
        name: 'a removed field, not reserved',
        change: (s) => {
          delete s.messages.Fork!.fields.child_pid
        },
        expect: /Fork\.child_pid \(4\) was removed without/,
      },
      {
        name: 'a removed field, number and name reserved',
        change: (s) => {
          delete s.messages.Fork!.fields.child_pid
          s.messages.Fork!.reserved.push(4, 'child_pid')
        },
        expect: null,
      },
      {
        name: "a removed field's number reused",
        change: (s) => {
          delete s.messages.Fork!.fields.child_pid
          s.messages.Fork!.fields.child_ns = { id: 4, type: 'uint64', label: 'singular' }
        },
        expect: /number 4 reused by child_ns/,
      },
      {
        name: 'a renumbered enum value',
        change: (s) => {
          s.enums['Drops.Reason']!.values.REASON_QUEUE_FULL = 9
        },
        expect: /Drops\.Reason\.REASON_QUEUE_FULL: 4 → 9/,
      },
    ]
  for (const c of cases) {
    it(`${c.expect ? 'rejects' : 'accepts'} ${c.name}`, () => {
      const problems = edit(c.change)
      if (c.expect === null) assert.deepEqual(problems, [])
      else
        assert.ok(
          problems.some((p) => c.expect!.test(p)),
          problems.join('\n'),
        )
    })
  }
})
