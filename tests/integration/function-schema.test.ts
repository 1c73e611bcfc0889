// A function's cold start checks the schema with one query instead of running the migrations:
// a store nobody migrated, or one migrated by an older build, is refused with SCHEMA_BEHIND
// (so the invocation fails and the platform retries while someone runs `ebbflow migrate`); a
// migrated one passes; EBBFLOW_FUNCTION_SCHEMA=migrate brings an empty store up itself.
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { loadFunctionConfig, openFunctionIngester } from '@ebbflow/ingester'
import {
  ChdbStore,
  checkSchemaVersion,
  DEFAULT_MIGRATIONS_DIR,
  latestMigrationVersion,
  migrate,
} from '@ebbflow/store'

// The newest migration, from the folder's file names as the test reads them.
const newest = Math.max(
  ...readdirSync(DEFAULT_MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.*\.sql$/.test(f))
    .map((f) => Number(f.slice(0, 4))),
)

describe('function schema check', { timeout: 120_000 }, () => {
  let tmp: string
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-fn-schema-'))
  })
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses an unmigrated or older store, accepts a migrated one', async () => {
    assert.equal(latestMigrationVersion(), newest)
    const store = await ChdbStore.open(join(tmp, 'stamp'))
    try {
      await assert.rejects(checkSchemaVersion(store, newest), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SCHEMA_BEHIND')
        assert.match(err.message, new RegExp(`at migration 0, this build needs ${newest}`))
        return true
      })
      await migrate(store)
      assert.equal(await checkSchemaVersion(store, newest), newest)
      await assert.rejects(checkSchemaVersion(store, newest + 1), /SCHEMA_BEHIND|needs/)
    } finally {
      await store.close()
    }
  })

  it('EBBFLOW_FUNCTION_SCHEMA=migrate brings an empty store up; stamp mode then trusts it', async () => {
    const env = { EBBFLOW_DATA_DIR: join(tmp, 'migrate'), EBBFLOW_FUNCTION_SCHEMA: 'migrate' }
    const logger = createLogger('test', 'silent')
    const first = await openFunctionIngester(loadFunctionConfig(env), logger, 'test')
    assert.equal(first.schemaVersion, newest)
    await first.close()
    const again = await openFunctionIngester(
      loadFunctionConfig({ ...env, EBBFLOW_FUNCTION_SCHEMA: 'stamp' }),
      logger,
      'test',
    )
    assert.equal(again.schemaVersion, newest)
    await again.close()
    assert.throws(
      () =>
        loadFunctionConfig({ EBBFLOW_FUNCTION_SCHEMA: 'sometimes', EBBFLOW_RETENTION_DAYS: '0' }),
      (err: Error) =>
        /EBBFLOW_FUNCTION_SCHEMA/.test(err.message) && /EBBFLOW_RETENTION_DAYS/.test(err.message),
    )
  })
})
