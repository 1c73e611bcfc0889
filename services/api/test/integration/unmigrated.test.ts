// The API over a store no migration has run on yet (the API never migrates): every root field
// answers a coded error that says what to run, not a masked internal error.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { ChdbStore } from '@ebbflow/store'
import { type Api, createApi } from '../../src/app.ts'
import { gql, TOKEN_MAP, TOKENS } from '../harness.ts'

describe('the API over a store with no schema', () => {
  let dir: string
  let store: ChdbStore
  let api: Api
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-api-empty-'))
    store = await ChdbStore.open(dir)
    api = createApi({ store, tokens: TOKEN_MAP, logger: createLogger('api-test', 'silent') })
  })
  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  for (const query of [
    '{ collectorHealth { node } }',
    '{ execEvents(filter: {}) { edges { node { pid comm } } } }',
    '{ syscallCounts(filter: {}) { syscall } }',
  ])
    it(`answers ${query} with UNAVAILABLE naming ebbflow migrate`, async () => {
      const r = await gql(api, query, {}, TOKENS.admin)
      assert.ok(r.errors?.length, JSON.stringify(r))
      for (const e of r.errors) {
        assert.equal(e.extensions?.code, 'UNAVAILABLE', e.message)
        assert.match(e.message, /no ebbflow schema yet: run `ebbflow migrate`/)
      }
    })
})
