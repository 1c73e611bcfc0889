import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { stripVTControlCharacters } from 'node:util'

const logger = join(import.meta.dirname, '../../src/logger.ts')

/** Logs one line from a child process in `format` and returns its stderr. */
function logOnce(format: string): string {
  const code = `import { createLogger } from ${JSON.stringify(logger)}
createLogger('unit', 'info', ${JSON.stringify(format)}).info({ kafka: { token: 'abc' }, n: 7 }, 'hello there')`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return r.stderr
}

describe('createLogger', () => {
  it('json: one JSON line, secrets redacted', () => {
    const line = JSON.parse(logOnce('json')) as Record<string, unknown>
    assert.equal(line.msg, 'hello there')
    assert.equal(line.name, 'unit')
    assert.equal(line.n, 7)
    assert.deepEqual(line.kafka, { token: '[redacted]' })
  })

  it('pretty: a readable line (pino-pretty, loaded on demand), secrets redacted', () => {
    const text = stripVTControlCharacters(logOnce('pretty'))
    assert.match(text, /^\r?\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(unit\): hello there$/m)
    assert.match(text, /^ {4}n: 7$/m)
    assert.match(text, /"token": "\[redacted\]"/)
    assert.throws(() => JSON.parse(text))
  })
})
