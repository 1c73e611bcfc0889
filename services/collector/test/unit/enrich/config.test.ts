// The enrichment settings: defaults, environment names, every problem reported at once.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '@ebbflow/common'
import { loadEnrichConfig } from '../../../src/enrich/config.ts'

describe('loadEnrichConfig', () => {
  it('has documented defaults and host mode without a kubeconfig', () => {
    const c = loadEnrichConfig({}, {})
    assert.equal(c.kubernetes, 'auto')
    assert.equal(c.kubeconfig, undefined)
    assert.equal(c.lateMetadataMs, 2000)
    assert.deepEqual(c.labelAllowlist, [])
    assert.deepEqual(c.functionLabels, [])
    assert.equal(c.maxLabels, 32)
  })

  it('reads lists and numbers from EBBFLOW_* variables, explicit values first', () => {
    const c = loadEnrichConfig(
      { lateMetadataMs: '500' },
      {
        EBBFLOW_LATE_METADATA_MS: '9000',
        EBBFLOW_LABEL_ALLOWLIST: 'app, tier',
        EBBFLOW_FUNCTION_LABELS: 'example.com/fn',
      },
    )
    assert.equal(c.lateMetadataMs, 500)
    assert.deepEqual(c.labelAllowlist, ['app', 'tier'])
    assert.deepEqual(c.functionLabels, ['example.com/fn'])
  })

  it('reports every invalid value at once', () => {
    assert.throws(
      () =>
        loadEnrichConfig(
          {},
          { EBBFLOW_KUBERNETES: 'maybe', EBBFLOW_LATE_METADATA_MS: '-1', EBBFLOW_MAX_PODS: 'x' },
        ),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.equal(err.problems.length, 3, err.message)
        assert.match(err.message, /EBBFLOW_KUBERNETES/)
        assert.match(err.message, /EBBFLOW_LATE_METADATA_MS/)
        assert.match(err.message, /EBBFLOW_MAX_PODS/)
        return true
      },
    )
  })

  it('refuses a kubeconfig that does not exist, and "on" without any', () => {
    assert.throws(
      () => loadEnrichConfig({ kubeconfig: '/nonexistent/kubeconfig' }, {}),
      /no such file/,
    )
    assert.throws(() => loadEnrichConfig({ kubernetes: 'on' }, {}), /needs KUBECONFIG/)
  })
})
