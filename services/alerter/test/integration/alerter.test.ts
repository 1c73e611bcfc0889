// The alerter against a real chDB store and a real local webhook receiver. Each evaluation is a
// fresh Alerter (nothing carried in memory, as consecutive `--once` runs), on the test's clock;
// the condition is rows the test inserts, so every expectation comes from what the test did.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger, EbbflowError } from '@ebbflow/common'
import { ChdbStore, migrate, type Store } from '@ebbflow/store'
import { WebhookReceiver } from '../../../../tests/support/webhook-receiver.ts'
import { Alerter, type AlerterOptions, checkRules, runOnce } from '../../src/alerter.ts'
import { AlerterMetrics } from '../../src/metrics.ts'
import { parseRuleFile, type Rule } from '../../src/rules.ts'
import { AlertStore, chTime } from '../../src/store-state.ts'

const logger = createLogger('alerter-test', 'silent')
const S = 1000

function rule(yaml: string): Rule {
  const problems: string[] = []
  const [r] = parseRuleFile('test.yaml', `rules:\n${yaml}`, problems)
  assert.deepEqual(problems, [])
  return r!
}

/** A rule over the gauge rows this test writes: fires per node while its latest value is > 0. */
function gaugeRule(name: string, metric: string, extra = ''): Rule {
  return rule(`  - name: ${name}
    every: 1s
${extra}    condition: value > 0
    labels: { team: platform }
    annotations: { summary: "{{ $labels.node }} at {{ $value }}" }
    sql: |
      SELECT node AS label_node, 'ns-a' AS label_namespace, argMax(value, time) AS value
      FROM ebbflow.collector_stats WHERE metric = '${metric}' GROUP BY node
`)
}

// Recent times: rows older than the retention TTL may be dropped by a merge at any moment.
const GAUGE_T0 = Date.now()
let seq = 0
async function setGauge(store: Store, metric: string, node: string, value: number) {
  seq++
  await store.insert('ebbflow.collector_stats', [
    { time: chTime(GAUGE_T0 + seq), node, metric, value },
  ])
}

describe('alerter on chDB', { timeout: 120_000 }, () => {
  let dir: string
  let store: ChdbStore
  let hook: WebhookReceiver
  const T = Math.floor(Date.now() / S) * S

  const options = (replica: string, more: Partial<AlerterOptions> = {}): AlerterOptions => ({
    alertmanagers: [],
    webhooks: [hook.url],
    resend: 60 * S,
    lagMargin: 0,
    deliveryHorizon: 3600 * S,
    httpTimeout: 2 * S,
    webhookAttempts: 2,
    replica,
    ...more,
  })
  const at = (k: number) => () => T + k * S
  /** One `--once`-like evaluation of `r` at T + k s by replica `replica`. */
  const once = (r: Rule, k: number, replica = 'r1', more: Partial<AlerterOptions> = {}) =>
    new Alerter([r], options(replica, more), { store, logger, now: at(k) }).evaluateRule(r)
  const hooksFor = (name: string) => hook.received.filter((x) => x.body.transition.rule === name)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-alerter-'))
    store = await ChdbStore.open(dir)
    await migrate(store)
    hook = await new WebhookReceiver().start()
  })
  after(async () => {
    await hook.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('pending for `for`, then firing, then resolved; each transition to the webhook once', async () => {
    const r = gaugeRule('GaugeHigh', 'g1', '    for: 2s\n')
    await setGauge(store, 'g1', 'node-a', 5)
    const states: string[] = []
    for (let k = 0; k <= 5; k++) {
      if (k === 4) await setGauge(store, 'g1', 'node-a', 0)
      const res = await once(r, k)
      assert.equal(res.outcome, 'evaluated')
      const [row] = await store.query<{ state: string }>(
        `SELECT toString(state) AS state FROM ebbflow.alert_state FINAL WHERE rule = 'GaugeHigh' AND NOT deleted`,
      )
      states.push(row?.state ?? 'none')
      if (k < 2) assert.equal(hooksFor('GaugeHigh').length, 0, 'pending is never sent')
    }
    assert.deepEqual(states, ['pending', 'pending', 'firing', 'firing', 'resolved', 'resolved'])
    const got = hooksFor('GaugeHigh')
    assert.deepEqual(
      got.map((x) => x.body.status),
      ['firing', 'resolved'],
    )
    const firing = got[0]!.body.alerts[0]
    assert.deepEqual(firing.labels, {
      node: 'node-a',
      namespace: 'ns-a',
      team: 'platform',
      alertname: 'GaugeHigh',
    })
    assert.equal(firing.annotations.summary, 'node-a at 5')
    assert.equal(firing.startsAt, new Date(T + 2 * S).toISOString())
    assert.equal(got[1]!.body.alerts[0].endsAt, new Date(T + 4 * S).toISOString())
    assert.equal(got[0]!.headers['idempotency-key'], got[0]!.body.transition.id)
    const history = await store.query<{ moves: string }>(
      `SELECT concat(toString(from_state), '>', toString(to_state), '@', toString(toUnixTimestamp64Milli(time) - ${T})) AS moves
       FROM ebbflow.alert_transitions FINAL WHERE rule = 'GaugeHigh' ORDER BY time, to_state`,
    )
    assert.deepEqual(
      history.map((h) => h.moves),
      ['inactive>pending@0', 'pending>firing@2000', 'firing>resolved@4000'],
    )
    // The same slot again (a CronJob that ran twice) changes nothing.
    assert.equal((await once(r, 5)).outcome, 'skipped')
  })

  it('two replicas on one store: each slot evaluated once, each transition sent once', async () => {
    const r = gaugeRule('GaugeReplicas', 'g2')
    await setGauge(store, 'g2', 'node-b', 1)
    const evaluatedBy: string[] = []
    for (let k = 10; k < 16; k++) {
      if (k === 13) await setGauge(store, 'g2', 'node-b', 0)
      const [a, b] = await Promise.all([once(r, k, 'replica-a'), once(r, k, 'replica-b')])
      const done = [a, b].filter((x) => x.outcome === 'evaluated')
      assert.equal(done.length, 1, `slot ${k}: exactly one replica evaluates`)
      evaluatedBy.push(a.outcome === 'evaluated' ? 'a' : 'b')
    }
    const got = hooksFor('GaugeReplicas')
    assert.deepEqual(
      got.map((x) => x.body.status),
      ['firing', 'resolved'],
    )
    const claims = await store.query<{ n: string }>(
      `SELECT count() AS n FROM ebbflow.alert_evaluations WHERE rule = 'GaugeReplicas' AND phase = 'claim'`,
    )
    assert.equal(Number(claims[0]!.n), 6, 'one claim row kept per slot')
  })

  it('a broken rule is a health of its own while the others keep running', async () => {
    const good = gaugeRule('GaugeGood', 'g3')
    const broken = rule(`  - name: BrokenSql
    every: 1s
    sql: SELECT nope FROM ebbflow.no_such_table
`)
    await setGauge(store, 'g3', 'node-c', 1)
    const metrics = new AlerterMetrics()
    const { results, failures } = await runOnce([broken, good], options('r1'), {
      store,
      logger,
      now: at(20),
      metrics,
    })
    const health = await metrics.registry.getSingleMetricAsString('ebbflow_rule_health')
    assert.match(health, /ebbflow_rule_health\{rule="BrokenSql",health="error"\} 1/)
    assert.match(health, /ebbflow_rule_health\{rule="GaugeGood",health="ok"\} 1/)
    assert.deepEqual(failures, [])
    const byRule = Object.fromEntries(results.map((x) => [x.rule, x]))
    assert.equal(byRule.BrokenSql?.outcome === 'evaluated' && byRule.BrokenSql.health, 'error')
    assert.equal(byRule.GaugeGood?.outcome === 'evaluated' && byRule.GaugeGood.health, 'ok')
    const [stored] = await store.query<{ health: string; error: string }>(
      `SELECT toString(health) AS health, error FROM ebbflow.alert_evaluations
       WHERE rule = 'BrokenSql' AND phase = 'done'`,
    )
    assert.equal(stored?.health, 'error')
    assert.match(stored!.error, /no_such_table/)
    await hook.waitFor(
      (x) => x.some((h) => h.body.transition.rule === 'GaugeGood'),
      5000,
      'GaugeGood',
    )
    // --check's view of the same rules, plus columns Alertmanager would refuse.
    const badLabel = rule(`  - name: BadLabel
    condition: value > 0
    sql: SELECT 1 AS \`label_a-b\`, 'x' AS value
`)
    const problems = await checkRules(store, [broken, good, badLabel])
    assert.equal(problems.length, 3, problems.join('\n'))
    assert.match(problems[0]!, /^test\.yaml:4: rule BrokenSql: .*no_such_table/)
    assert.match(problems[1]!, /rule BadLabel: column "label_a-b" is not a valid label name/)
    assert.match(problems[2]!, /rule BadLabel: column "value" is String, not a number/)
  })

  it('a webhook that is down gets the transition once it is back, once', async () => {
    const r = gaugeRule('GaugeHookDown', 'g4')
    await setGauge(store, 'g4', 'node-d', 1)
    hook.down = true
    const refusedBefore = hook.refused
    await once(r, 30, 'r1', { webhookAttempts: 2 })
    assert.equal(
      hook.refused - refusedBefore,
      2,
      'tried twice (with backoff), then gave up for now',
    )
    assert.equal(hooksFor('GaugeHookDown').length, 0)
    hook.down = false
    await once(r, 31)
    await once(r, 32)
    assert.deepEqual(
      hooksFor('GaugeHookDown').map((x) => x.body.status),
      ['firing'],
    )
    const outcomes = await store.query<{ phase: string; generation: string }>(
      `SELECT toString(phase) AS phase, generation FROM ebbflow.alert_deliveries
       WHERE target = {t:String} AND phase != 'claim' AND transition_id IN
         (SELECT id FROM ebbflow.alert_transitions WHERE rule = 'GaugeHookDown')
       ORDER BY generation`,
      { t: hook.url },
    )
    assert.deepEqual(
      outcomes.map((o) => `${o.phase}#${o.generation}`),
      ['failed#0', 'delivered#1'],
    )
  })

  it('a replica that died between saving transitions and saving state: the next evaluation announces nothing twice', async () => {
    const r = gaugeRule('GaugeDiedMidway', 'g9')
    await setGauge(store, 'g9', 'node-d', 3)
    // The store as a process that is killed right after its transitions were written: the
    // state insert never happens, and neither does anything after it.
    const dying = new Proxy(store, {
      get(target, key, receiver) {
        if (key === 'insert')
          return async (table: string, rows: object[], o?: object) => {
            if (table === 'ebbflow.alert_state') throw new Error('killed')
            return target.insert(table, rows, o as never)
          }
        const v = Reflect.get(target, key, receiver)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    await assert.rejects(
      new Alerter([r], options('r-dying'), { store: dying, logger, now: at(40) }).evaluateRule(r),
      /killed/,
    )
    assert.equal((await once(r, 42, 'r-next')).outcome, 'evaluated')
    await once(r, 43, 'r-next')
    const history = await store.query<{ moves: string }>(
      `SELECT concat(toString(from_state), '>', toString(to_state)) AS moves
       FROM ebbflow.alert_transitions FINAL WHERE rule = 'GaugeDiedMidway' ORDER BY time, to_state`,
    )
    assert.deepEqual(
      history.map((h) => h.moves),
      ['inactive>pending', 'pending>firing'],
      'the alert became active once',
    )
    await hook.waitFor(
      () => hooksFor('GaugeDiedMidway').length >= 1,
      10_000,
      'the firing notification',
    )
    assert.deepEqual(
      hooksFor('GaugeDiedMidway').map((x) => x.body.status),
      ['firing'],
    )
  })

  it('a replica that died after claiming a slot holds the next one up for one interval at most', async () => {
    const r = gaugeRule('GaugeDeadReplica', 'g6')
    await setGauge(store, 'g6', 'node-f', 1)
    const first = await once(r, 50)
    assert.ok(first.outcome === 'evaluated')
    // A replica claims slot 51 and dies before finishing it.
    assert.equal(
      await new AlertStore(store, 'dead').claimSlot(
        r.name,
        Math.floor((T + 51 * S) / S),
        T + 51 * S,
      ),
      true,
    )
    assert.equal((await once(r, 51)).outcome, 'skipped', 'the claimed slot is not taken over')
    const started = performance.now()
    const next = await once(r, 52)
    const waited = performance.now() - started
    assert.ok(
      next.outcome === 'evaluated' && next.windowStart === first.windowEnd,
      JSON.stringify(next),
    )
    assert.ok(
      waited >= 900 && waited < 10_000,
      `waited ${Math.round(waited)} ms for the dead replica`,
    )
    assert.deepEqual(
      hooksFor('GaugeDeadReplica').map((x) => x.body.status),
      ['firing'],
    )
  })

  it('a store that is down: the evaluation fails clearly, and the next one covers the missed window', async () => {
    const r = gaugeRule('GaugeStoreDown', 'g5')
    await setGauge(store, 'g5', 'node-e', 1)
    let down = false
    const flaky: Store = {
      exec: (sql) => (down ? refuse() : store.exec(sql)),
      query: (sql, params) => (down ? refuse() : store.query(sql, params)),
      insert: (t, rows, o) => (down ? refuse() : store.insert(t, rows, o)),
      close: async () => {},
    }
    const run = (k: number) =>
      new Alerter([r], options('r1'), { store: flaky, logger, now: at(k) }).evaluateRule(r)
    const first = await run(40)
    assert.equal(first.outcome, 'evaluated')
    down = true
    await assert.rejects(run(41), (err: EbbflowError) => err.code === 'STORE_DOWN' && err.retriable)
    await assert.rejects(run(42), /store is down/)
    down = false
    const next = await run(43)
    assert.ok(first.outcome === 'evaluated' && next.outcome === 'evaluated')
    assert.equal(next.windowStart, first.windowEnd, 'no window skipped')
    assert.equal(next.windowEnd, T + 43 * S)
    assert.deepEqual(
      hooksFor('GaugeStoreDown').map((x) => x.body.status),
      ['firing'],
    )
  })
})

function refuse(): Promise<never> {
  return Promise.reject(new EbbflowError('STORE_DOWN', 'store is down (test)', { retriable: true }))
}
