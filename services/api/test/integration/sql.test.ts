// The query runner's limits, applied by chDB itself.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { GraphQLError } from 'graphql'
import { Params, QueryRunner } from '../../src/sql.ts'
import { type Harness, openHarness } from '../harness.ts'

let h: Harness
before(async () => {
  h = await openHarness()
})
after(async () => {
  await h.close()
})

const limits = { maxExecutionSeconds: 1, maxResultRows: 5, maxMemoryBytes: 256 * 1024 * 1024 }

describe('QueryRunner', () => {
  it('appends the limits to every statement', () => {
    const runner = new QueryRunner(h.store, limits)
    assert.equal(
      runner.settings(),
      "SETTINGS max_execution_time = 1, max_result_rows = 5, result_overflow_mode = 'throw', max_memory_usage = 268435456, readonly = 1",
    )
  })

  it('is read-only per statement in chDB', async () => {
    const runner = new QueryRunner(h.store, limits)
    await assert.rejects(
      runner.select(`INSERT INTO ebbflow.collector_stats (node) SELECT 'x'`, new Params()),
      /READONLY/,
    )
    const rows = await runner.select<{ n: string }>(
      `SELECT count() AS n FROM ebbflow.collector_stats WHERE node = 'x'`,
      new Params(),
    )
    assert.deepEqual(rows, [{ n: '0' }])
  })

  it('stops a statement past its time', async () => {
    const runner = new QueryRunner(h.store, limits)
    const err = await runner
      .select('SELECT sum(cityHash64(number)) AS s FROM numbers(100000000000)', new Params())
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    assert.ok(err instanceof GraphQLError)
    assert.equal(err.extensions.code, 'QUERY_TIMEOUT')
    const rows = await runner.select<{ x: number }>('SELECT 1 AS x', new Params())
    assert.deepEqual(rows, [{ x: 1 }])
  })

  it('binds values, never splices them', async () => {
    const runner = new QueryRunner(h.store, limits)
    const p = new Params()
    const value = "x'); DROP TABLE ebbflow.traffic; --{p0:String}\\"
    const rows = await runner.select<{ v: string }>(`SELECT ${p.add('String', value)} AS v`, p)
    assert.deepEqual(rows, [{ v: value }])
  })
})
