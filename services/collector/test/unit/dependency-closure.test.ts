// The collector runs on every node: its package graph must not carry the store (chDB brings a
// native library of about 540 MB; the ClickHouse client is only for services that write or
// read rows). The walk follows the installed packages the way Node resolves them, from the
// collector's own dependencies, and fails on either name.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { packageClosure } from '../../../../tests/support/package-closure.ts'

const ROOT = join(import.meta.dirname, '../../../..')
const STORE_PACKAGES = ['chdb', '@clickhouse/client']

describe('the collector package graph', () => {
  it('does not reach chDB or the ClickHouse client', () => {
    const reached = packageClosure(join(ROOT, 'services/collector'))
    // The walk itself works: it reaches what the collector does use, through a workspace.
    for (const name of ['@ebbflow/common', '@ebbflow/native', 'kafkajs', 'pino', 'protobufjs'])
      assert.ok(reached.has(name), `${name} not reached: the walk is broken`)
    for (const name of STORE_PACKAGES)
      assert.equal(reached.get(name)?.via.join(' → '), undefined, `the collector reaches ${name}`)
  })

  it('the store package does reach both (the walk would see them)', () => {
    const reached = packageClosure(join(ROOT, 'services/store'))
    for (const name of STORE_PACKAGES) assert.ok(reached.has(name), `${name} not reached`)
  })
})
