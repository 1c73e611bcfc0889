// EBBFLOW_FAULT as the ingester's configuration reads it: a named point armed, or every bad
// value reported with the variable's name. The kill itself is proven by
// tests/faults/ingest-kills.test.ts, which waits for each point to fire in a real ingester.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '@ebbflow/common'
import { loadIngesterConfig } from '../../src/config.ts'

const env = (fault?: string) => ({
  EBBFLOW_KAFKA: '127.0.0.1:9092',
  EBBFLOW_DATA_DIR: '/nonexistent-ebbflow-test',
  ...(fault === undefined ? {} : { EBBFLOW_FAULT: fault }),
})

describe('EBBFLOW_FAULT', () => {
  it('is off unless set', () => {
    assert.equal(loadIngesterConfig({}, env()).fault, undefined)
    assert.equal(loadIngesterConfig({}, env('')).fault, undefined)
  })

  for (const [text, want] of [
    ['ingest.after-insert:kill', { point: 'ingest.after-insert', action: 'kill', hit: 1 }],
    ['ingest.before-insert:kill@3', { point: 'ingest.before-insert', action: 'kill', hit: 3 }],
    ['ingest.between-tables:kill@1', { point: 'ingest.between-tables', action: 'kill', hit: 1 }],
  ] as const)
    it(`arms ${text}`, () => {
      assert.deepEqual(loadIngesterConfig({}, env(text)).fault, want)
    })

  for (const [text, why] of [
    ['ingest.after-commit:kill', /unknown fault point ingest.after-commit; known: ingest\.before/],
    ['ingest.after-insert:pause', /unknown fault action pause/],
    ['ingest.after-insert', /expected point:action\[@n\]/],
    ['ingest.after-insert:kill@0', /@n counts passes from 1/],
  ] as const)
    it(`refuses ${text}`, () => {
      assert.throws(
        () => loadIngesterConfig({}, env(text)),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.problems.some((p) => p.includes('EBBFLOW_FAULT') && why.test(p)),
      )
    })
})
