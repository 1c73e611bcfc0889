// The redaction rules, one case per form: what a user typed, what leaves the collector.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { DEFAULT_REDACT_RULES, REDACTED as R, Redactor } from '../../src/redact.ts'

const CASES: [string, string[], string[]][] = [
  ['/usr/bin/app', ['app', '--password=hunter2', '-v'], ['app', `--password=${R}`, '-v']],
  ['/usr/bin/app', ['app', '--db-token', 'abc', 'next'], ['app', '--db-token', R, 'next']],
  [
    '/usr/bin/env',
    ['env', 'AWS_SECRET_ACCESS_KEY=wJalr', 'X=1'],
    ['env', `AWS_SECRET_ACCESS_KEY=${R}`, 'X=1'],
  ],
  [
    '/usr/bin/curl',
    ['curl', '-H', 'Authorization: Bearer eyJ.x'],
    ['curl', '-H', `Authorization: Bearer ${R}`],
  ],
  [
    '/usr/bin/git',
    ['git', 'clone', 'https://bob:s3cret@h/r.git'],
    ['git', 'clone', `https://bob:${R}@h/r.git`],
  ],
  [
    '/usr/bin/curl',
    ['curl', 'https://h/a?x=1&access_token=t0k&y=2'],
    ['curl', `https://h/a?x=1&access_token=${R}&y=2`],
  ],
  ['/usr/bin/mysql', ['mysql', '-u', 'root', '-pS3cr3t'], ['mysql', '-u', 'root', `-p${R}`]],
  // -p on another tool is a port or a path, not a password.
  ['/usr/bin/ssh', ['ssh', '-p2222', 'host'], ['ssh', '-p2222', 'host']],
  ['/usr/bin/sshpass', ['sshpass', '-p', 'pw', 'ssh', 'h'], ['sshpass', '-p', R, 'ssh', 'h']],
  [
    '/usr/bin/app',
    ['app', '{"password":"pw","user":"u"}'],
    ['app', `{"password":"${R}","user":"u"}`],
  ],
  [
    '/usr/bin/app',
    ['app', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----'],
    ['app', `-----BEGIN RSA PRIVATE KEY-----${R}-----END RSA PRIVATE KEY-----`],
  ],
  [
    '/usr/bin/ls',
    ['ls', '-la', '/tmp/password-reset', 'KEYBOARD'],
    ['ls', '-la', '/tmp/password-reset', 'KEYBOARD'],
  ],
]

describe('default redaction rules', () => {
  const redactor = new Redactor(DEFAULT_REDACT_RULES)
  for (const [filename, args, expected] of CASES)
    it(`${args.join(' ').slice(0, 60)}`, () => {
      assert.deepEqual(redactor.args(args, filename), expected)
    })

  it('returns the same array when nothing matched (no copy on the hot path)', () => {
    const args = ['ls', '-l']
    assert.equal(redactor.args(args, '/bin/ls'), args)
  })
})

describe('configured rules', () => {
  it('adds rules from a file and reports every bad one at once', () => {
    const good = join(tmpdir(), `redact-${process.pid}.json`)
    writeFileSync(good, JSON.stringify([{ name: 'pin', arg: '^--pin-code=(\\d+)$' }]))
    const redactor = Redactor.fromConfig({ redactDefaults: false, redactRulesFile: good })
    assert.deepEqual(redactor.args(['x', '--pin-code=1234', '--password=p'], '/x'), [
      'x',
      `--pin-code=${R}`,
      '--password=p',
    ])
    writeFileSync(
      good,
      JSON.stringify([{ name: 'a', arg: '(' }, { name: 'b' }, { name: 'c', nope: 1 }]),
    )
    assert.throws(
      () => Redactor.fromConfig({ redactDefaults: true, redactRulesFile: good }),
      (err: Error & { problems?: string[] }) => {
        const text = JSON.stringify(err.problems)
        for (const at of ['[0] rule a: arg', '[1]', '[2]'])
          assert.ok(text.includes(at), `${at}: ${text}`)
        return true
      },
    )
  })
})
