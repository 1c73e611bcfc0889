// The TypeScript layout is generated from the BPF object's BTF; this test checks it against a
// second, independent reader of events.h: the host C compiler's offsetof/sizeof.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { LAYOUTS } from '../../src/events/layout.generated.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..')

describe('wire layout', () => {
  it('equals offsetof/sizeof of bpf/include/events.h compiled by the host C compiler', () => {
    const lines = [
      '#include <stdio.h>',
      '#include <stddef.h>',
      '#include <linux/types.h>',
      '#include "events.h"',
      'int main(void) {',
      'printf("{");',
    ]
    let first = true
    for (const [struct, layout] of Object.entries(LAYOUTS)) {
      const sep = first ? '' : ','
      first = false
      lines.push(`printf("${sep}\\"${struct}\\":{\\"__sizeof\\":%zu", sizeof(struct ${struct}));`)
      for (const [path, field] of Object.entries(layout.fields)) {
        lines.push(
          `printf(",\\"${path}\\":[%zu,%zu]", offsetof(struct ${struct}, ${path}), sizeof(((struct ${struct} *)0)->${path}));`,
        )
        void field
      }
      lines.push('printf("}");')
    }
    lines.push('printf("}\\n"); return 0; }')
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-layout-'))
    try {
      writeFileSync(join(dir, 'layout.c'), lines.join('\n'))
      execFileSync('cc', [
        '-std=c11',
        '-Wall',
        '-Werror',
        `-I${join(root, 'bpf/include')}`,
        '-o',
        join(dir, 'layout'),
        join(dir, 'layout.c'),
      ])
      const fromC = JSON.parse(execFileSync(join(dir, 'layout'), { encoding: 'utf8' })) as Record<
        string,
        Record<string, number | [number, number]>
      >
      for (const [struct, layout] of Object.entries(LAYOUTS)) {
        const c = fromC[struct]!
        assert.equal(layout.size, c.__sizeof, `sizeof(struct ${struct})`)
        for (const [path, field] of Object.entries(layout.fields)) {
          assert.deepEqual([field.offset, field.size], c[path], `struct ${struct}.${path}`)
        }
      }
      assert.ok(Object.keys(LAYOUTS).length >= 9, 'every wire struct is in the layout')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is up to date with the compiled object (npm run gen:layout)', () => {
    execFileSync(process.execPath, [join(root, 'scripts/gen-layout.ts'), '--check'], {
      stdio: 'pipe',
    })
  })
})
