// Rule files: every problem named by file and line, all at once; conditions and templates.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { sampleOf } from '../../src/alerter.ts'
import { parseDuration } from '../../src/duration.ts'
import { expandTemplate, loadRules, parseRuleFile, passes, RulesError } from '../../src/rules.ts'

describe('rule files', { timeout: 10_000 }, () => {
  it('reads a rule with its defaults, file and lines', () => {
    const problems: string[] = []
    const text = [
      'rules:',
      '  - name: Shell',
      '    every: 30s',
      '    for: 1m30s',
      '    severity: critical',
      '    condition: value >= 2',
      '    labels: { team: sec }',
      '    annotations: { summary: "{{ $labels.pod }} ran {{ $value }}" }',
      '    sql: |',
      '      SELECT 1 AS value',
    ].join('\n')
    const [r] = parseRuleFile('a.yaml', text, problems)
    assert.deepEqual(problems, [])
    assert.equal(r!.line, 2)
    assert.equal(r!.sqlLine, 10)
    assert.equal(r!.everyMs, 30_000)
    assert.equal(r!.forMs, 90_000)
    assert.equal(r!.keepFiringForMs, 0)
    assert.deepEqual(r!.condition, { kind: 'threshold', op: '>=', threshold: 2 })
    assert.deepEqual(r!.labels, { team: 'sec', severity: 'critical' })
  })

  it('reports every problem of every file with its line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-rules-'))
    try {
      writeFileSync(
        join(dir, 'a.yaml'),
        'rules:\n  - name: A\n    sql: SELECT 1\n  - name: B\n    every: soon\n    sql: SELECT 1\n',
      )
      writeFileSync(
        join(dir, 'b.yml'),
        'rules:\n  - name: A\n    sql: SELECT 1\n    condition: value ~ 3\n',
      )
      writeFileSync(join(dir, 'c.yaml'), 'rules: [\n')
      assert.throws(
        () => loadRules(dir),
        (err: RulesError) => {
          assert.ok(err instanceof RulesError)
          const p = err.problems.join('\n')
          assert.match(p, /a\.yaml:4: rule B: every: "soon" is not a duration/)
          assert.match(p, /b\.yml:2: rule A: condition: condition "value ~ 3"/)
          assert.match(p, /c\.yaml:\d+: /)
          return true
        },
      )
      rmSync(join(dir, 'c.yaml'))
      writeFileSync(join(dir, 'b.yml'), 'rules:\n  - name: A\n    sql: SELECT 1\n')
      assert.throws(() => loadRules(dir), /b\.yml:2: rule A is also defined at .*a\.yaml:2/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('conditions, templates and durations', () => {
    assert.equal(passes({ kind: 'any' }, 0), true)
    assert.equal(passes({ kind: 'threshold', op: '>', threshold: 5 }, 5), false)
    assert.equal(passes({ kind: 'threshold', op: '>=', threshold: 5 }, 5), true)
    assert.equal(passes({ kind: 'threshold', op: '!=', threshold: 0 }, 0), false)
    assert.equal(expandTemplate('{{ $labels.pod }} at {{$value}}', { pod: 'web' }, 3), 'web at 3')
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('500ms'), 500)
    assert.throws(() => parseDuration('5 minutes'), /not a duration/)
  })

  it('a row becomes labels, value and annotations; empty labels are no labels', () => {
    const problems: string[] = []
    const [r] = parseRuleFile(
      'a.yaml',
      'rules:\n  - name: R\n    condition: value > 1\n    labels: { team: t }\n    annotations: { s: "{{ $labels.pod }}={{ $value }}" }\n    sql: SELECT 1\n',
      problems,
    )
    assert.deepEqual(sampleOf(r!, { label_pod: 'web', label_ns: '', value: '2', note: 7 }), [
      {
        labels: { pod: 'web', team: 't', alertname: 'R' },
        annotations: { note: '7', s: 'web=2' },
        value: 2,
      },
    ])
    assert.deepEqual(sampleOf(r!, { label_pod: 'web', value: 1 }), [], 'below the threshold')
  })
})
