// `ebbflow alert` as a user runs it: --check names a broken rule by file and line and fails;
// consecutive --once runs (separate processes, as a CronJob's) carry the state through the
// store and send each transition to the webhook once. Flags and EBBFLOW_* variables both work.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { WebhookReceiver } from '../support/webhook-receiver.ts'

const root = join(import.meta.dirname, '../..')
const cli = join(root, 'services/cli/src/main.ts')

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, 'alert', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, EBBFLOW_LOG_LEVEL: 'warn', ...env },
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('exit', (code) => resolve({ code, stderr }))
  })
}

describe('ebbflow alert (CLI)', { timeout: 120_000 }, () => {
  let dir: string
  let hook: WebhookReceiver
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-alert-cli-'))
    hook = await new WebhookReceiver().start()
  })
  after(async () => {
    await hook.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('--check reports a broken rule by file and line, and passes the built-in rules', async () => {
    const file = join(dir, 'broken.yaml')
    const lines = [
      'rules:',
      '  - name: Fine',
      '    sql: SELECT 1 AS value',
      '  - name: Broken',
      '    sql: |',
      '      SELECT 1 AS value',
      '      WHERE 1 = = 1',
    ]
    writeFileSync(file, `${lines.join('\n')}\n`)
    const broken = await run(['--check', '--rules', file, '--data-dir', join(dir, 'check')])
    assert.equal(broken.code, 1, broken.stderr)
    // `WHERE 1 = = 1` is on line 7 of the file.
    assert.match(broken.stderr, new RegExp(`${file}:7: rule Broken: .*[Ss]yntax error`))
    assert.doesNotMatch(broken.stderr, /rule Fine/)
    const pack = await run(['--check', '--rules', join(root, 'infra/alerts')], {
      EBBFLOW_DATA_DIR: join(dir, 'check'),
    })
    assert.equal(pack.code, 0, pack.stderr)
  })

  it('consecutive --once runs carry the state: firing once, then resolved once', async () => {
    const condition = join(dir, 'condition.csv')
    const rules = join(dir, 'rules.yaml')
    writeFileSync(
      rules,
      `rules:
  - name: FileCondition
    every: 1s
    condition: value > 0
    sql: |
      SELECT k AS label_key, v AS value FROM file('${condition}', 'CSV', 'k String, v Int32')
`,
    )
    const data = join(dir, 'once')
    writeFileSync(condition, 'disk,1\n')
    const first = await run(['--once', '--rules', rules, '--webhook', hook.url, '--data-dir', data])
    assert.equal(first.code, 0, first.stderr)
    assert.deepEqual(
      hook.received.map((r) => r.body.status),
      ['firing'],
    )
    assert.deepEqual(hook.received[0]!.body.alerts[0].labels, {
      key: 'disk',
      alertname: 'FileCondition',
    })
    const env = {
      EBBFLOW_RULES: rules,
      EBBFLOW_WEBHOOK: hook.url,
      EBBFLOW_DATA_DIR: data,
      EBBFLOW_ALERT_ONCE: 'true',
    }
    const second = await run([], env)
    assert.equal(second.code, 0, second.stderr)
    assert.equal(hook.received.length, 1, 'still firing: nothing new to send')
    writeFileSync(condition, 'disk,0\n')
    // A run inside a slot (`every`) an earlier run evaluated is skipped by design (a retried
    // CronJob): the third run starts in the rule's next slot, as a CronJob's next run would.
    await new Promise((r) => setTimeout(r, 1100))
    const third = await run([], env)
    assert.equal(third.code, 0, third.stderr)
    assert.deepEqual(
      hook.received.map((r) => r.body.status),
      ['firing', 'resolved'],
    )
  })
})
