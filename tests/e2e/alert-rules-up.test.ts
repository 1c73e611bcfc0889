// The built-in rules on rows the real pipeline wrote: `ebbflow up` captures on this machine for
// a few seconds and stops; then every rule evaluates healthily over those rows, and
// CollectorSilent stays silent for this node while it reported within 5 minutes and fires for
// it (by this machine's host name, which the test reads itself) once 5 minutes have passed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Alerter, loadRules, type Rule } from '@ebbflow/alerter'
import { createLogger } from '@ebbflow/common'
import { ChdbStore } from '@ebbflow/store'
import { isRoot } from '../support/capture.ts'
import { freePort } from '../support/kafka-broker.ts'

const bin = join(import.meta.dirname, '../../bin/ebbflow')
const RULES_DIR = fileURLToPath(new URL('../../infra/alerts', import.meta.url))
const skip = isRoot() ? false : 'needs root: `ebbflow up` loads BPF programs'

describe('built-in rules over rows from `ebbflow up`', { skip, timeout: 120_000 }, () => {
  let dir: string
  let store: ChdbStore
  let stoppedAt: number
  const rules = new Map<string, Rule>(loadRules(RULES_DIR).map((r) => [r.name, r]))

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-alert-up-'))
    const port = await freePort()
    const child = spawn(bin, ['up', '--data-dir', join(dir, 'data'), '--port', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, EBBFLOW_COUNTER_INTERVAL_MS: '500', EBBFLOW_LOG_LEVEL: 'info' },
    })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const deadline = Date.now() + 60_000
    while (!/ebbflow is up/.test(stderr)) {
      if (child.exitCode !== null) throw new Error(`ebbflow up exited ${child.exitCode}: ${stderr}`)
      if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${stderr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    // Rows reach the store within a second or so; wait until this node's counters are there.
    const until = Date.now() + 30_000
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ syscallCounts(filter: {}, first: 1) { syscall } }' }),
      })
      const body = (await res.json()) as { data?: { syscallCounts: unknown[] } }
      if ((body.data?.syscallCounts.length ?? 0) > 0) break
      assert.ok(Date.now() < until, 'no syscall counts from ebbflow up')
      await new Promise((r) => setTimeout(r, 300))
    }
    child.kill('SIGTERM')
    await exited
    stoppedAt = Date.now()
    store = await ChdbStore.open(join(dir, 'data'))
  })

  after(async () => {
    await store?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const evaluate = async (name: string, at: number) => {
    const rule = rules.get(name)!
    const alerter = new Alerter(
      [rule],
      {
        alertmanagers: [],
        webhooks: [],
        resend: 60_000,
        lagMargin: 0,
        deliveryHorizon: 3_600_000,
        httpTimeout: 1000,
        webhookAttempts: 1,
        replica: 'up-test',
      },
      { store, logger: createLogger('alert-up-test', 'silent'), now: () => at },
    )
    const result = await alerter.evaluateRule(rule)
    assert.ok(result.outcome === 'evaluated', JSON.stringify(result))
    assert.notEqual(
      result.health,
      'error',
      `${name}: ${result.outcome === 'evaluated' && result.error}`,
    )
    return [...(await alerter.state.loadActive(name)).values()]
  }

  it('every rule evaluates without error on real rows', async () => {
    for (const name of rules.keys()) await evaluate(name, stoppedAt)
  })

  it('CollectorSilent: silent while this node reported, firing 5 minutes after it stopped', async () => {
    const node = hostname()
    const active = await evaluate('CollectorSilent', stoppedAt + 61_000)
    assert.deepEqual(
      active.filter((a) => a.labels.node === node),
      [],
    )
    const later = await evaluate('CollectorSilent', stoppedAt + 6 * 60_000)
    const mine = later.filter((a) => a.labels.node === node)
    assert.equal(mine.length, 1, JSON.stringify(later.map((a) => a.labels)))
    assert.equal(mine[0]!.state, 'firing')
    assert.ok(
      mine[0]!.value >= 300 && mine[0]!.value <= 6 * 60 + 60,
      `silent for ${mine[0]!.value} s`,
    )
  })
})
