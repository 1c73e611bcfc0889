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

// The rules as they were written before they were made linear in time: the same redaction is
// required of the rules now, on arguments built from the characters and words the rules turn on.
const SECRET_WORD =
  '(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|client[-_]?secret|credentials?|auth(?:[-_]?token)?|session[-_]?key|sig(?:nature)?)'
const BACKTRACKING: Record<string, { arg?: string; nextArg?: string }> = {
  'flag=value': { arg: `^--?[\\w.-]*${SECRET_WORD}[\\w.-]*[=:](.+)$` },
  'flag value': { nextArg: `^--?[\\w.-]*${SECRET_WORD}[\\w.-]*$` },
  'NAME=value': {
    arg: '^(?:[A-Za-z_][A-Za-z0-9_.]*)?(?:SECRET|PASSWORD|PASSWD|PASS|PWD|TOKEN|KEY|CREDENTIALS?|AUTH)[A-Za-z0-9_.]*=(.+)$',
  },
  'url credentials': { arg: '[a-z][a-z0-9+.-]*://[^/\\s:@]*:([^/\\s@]+)@' },
  'query parameter': { arg: `[?&;][\\w.-]*${SECRET_WORD}[\\w.-]*=([^&;\\s]+)` },
  'json field': { arg: `"[\\w.-]*${SECRET_WORD}[\\w.-]*"\\s*:\\s*"([^"]*)"` },
}

describe('the rules in linear time', () => {
  const before = new Redactor(
    DEFAULT_REDACT_RULES.map((r) => (BACKTRACKING[r.name] ? { ...r, ...BACKTRACKING[r.name] } : r)),
  )
  const now = new Redactor(DEFAULT_REDACT_RULES)

  it('redact exactly what the backtracking rules redacted', () => {
    assert.equal(Object.keys(BACKTRACKING).length, 6)
    for (const name of Object.keys(BACKTRACKING))
      assert.ok(
        DEFAULT_REDACT_RULES.some((r) => r.name === name),
        `${name} is a default rule`,
      )
    const pieces = [
      ...['pass', 'PASSWORD', 'token', 'api-key', 'Secret', 'auth_token', 'sig', 'key', 'x'],
      ...['-', '--', '_', '.', '=', ':', '"', '?', '&', ';', ' ', '@', '/', '://', '1', '+', 'a'],
      ...['https', 'db', 'Bearer ', 'X-Api-Token', 'u:p@h', '"pw": "v"'],
    ]
    // A small deterministic generator (xorshift): the same 20,000 arguments on every run.
    let seed = 0x2545f491
    const next = () => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) / 2 ** 32
    }
    let redacted = 0
    for (let i = 0; i < 20_000; i++) {
      const parts = Array.from(
        { length: 1 + Math.floor(next() * 9) },
        () => pieces[Math.floor(next() * pieces.length)]!,
      )
      const args = ['/usr/bin/app', parts.join(''), parts.reverse().join('')]
      const want = before.args(args, '/usr/bin/app')
      assert.deepEqual(now.args(args, '/usr/bin/app'), want, JSON.stringify(args))
      if (want !== args) redacted++
    }
    // The arguments exercise the rules: a good share of them has something redacted.
    assert.ok(redacted > 2000, `${redacted} of 20,000 had something redacted`)
  })

  it('an X- header is one whose name starts with X- (the one rule narrowed)', () => {
    const header = (h: string) => now.args(['curl', '-H', h], '/usr/bin/curl')[2]
    assert.equal(header('X-Vault-Token: s.abc'), `X-Vault-Token: ${R}`)
    assert.equal(header('x-goog-api-key:k'), `x-goog-api-key:${R}`)
    assert.equal(header('Proxy-Authorization: Basic dXNlcg=='), `Proxy-Authorization: Basic ${R}`)
    // Before: any "x-" inside a name. Now such a name is left as it is.
    assert.equal(header('My-X-Token: v'), 'My-X-Token: v')
  })

  it('4 KB arguments made to backtrack are read, and their secrets still found', () => {
    const word = (w: string) => w.repeat(Math.ceil(4000 / w.length)).slice(0, 4000)
    const args = [
      'app',
      word('a'),
      `--${word('pass')}`,
      `"${word('pass')}`,
      `?${word('pass')}`,
      word('PASS'),
      `--${word('token')}=v`,
      word('x-'),
    ]
    const out = now.args(args, '/usr/bin/app')
    // `--passpass…` is a flag named by a secret word: the argument after it is its value.
    const want = [...args.slice(0, 3), R, ...args.slice(4, 6), `--${word('token')}=${R}`, args[7]]
    assert.deepEqual(out, want)
    assert.deepEqual(before.args(args, '/usr/bin/app'), want)
  })
})
