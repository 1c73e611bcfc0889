import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError } from '@ebbflow/common'
import { loadApiConfig, readTokens } from '../../src/config.ts'

describe('loadApiConfig', () => {
  it('documents its defaults', () => {
    const c = loadApiConfig({}, { EBBFLOW_API_OPEN: 'true' })
    assert.equal(c.port, 4000)
    assert.equal(c.host, '127.0.0.1')
    assert.equal(c.graphiql, false)
    assert.equal(c.introspection, false)
    assert.equal(c.open, true)
    assert.equal(c.maxPageSize, 500)
  })

  it('takes flags before the environment', () => {
    const c = loadApiConfig({ port: '0', tokensFile: '/t.json' }, { EBBFLOW_PORT: '5000' })
    assert.equal(c.port, 0)
    assert.equal(c.tokensFile, '/t.json')
  })

  it('reports every invalid value at once', () => {
    assert.throws(
      () =>
        loadApiConfig(
          {},
          { EBBFLOW_PORT: '70000', EBBFLOW_GRAPHIQL: 'maybe', EBBFLOW_API_MAX_PAGE_SIZE: '0' },
        ),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.equal(err.problems.length, 3)
        assert.match(err.problems[0]!, /^port \(EBBFLOW_PORT\)/)
        return true
      },
    )
  })

  it('needs tokens unless open', () => {
    assert.throws(() => loadApiConfig({}, {}), /tokensFile \(EBBFLOW_API_TOKENS_FILE\): required/)
  })
})

describe('readTokens', () => {
  it('reads token → namespaces and refuses short tokens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-tokens-'))
    try {
      const good = join(dir, 'good.json')
      writeFileSync(good, JSON.stringify({ 'a-long-enough-token': ['shop'] }))
      assert.deepEqual(readTokens(good), { 'a-long-enough-token': ['shop'] })
      const bad = join(dir, 'bad.json')
      writeFileSync(bad, JSON.stringify({ short: ['shop'], 'another-long-token-x': 'shop' }))
      assert.throws(
        () => readTokens(bad),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError)
          assert.equal(err.problems.length, 2)
          return true
        },
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
