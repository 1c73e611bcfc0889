// The alerter on the real clock, sending to a real Alertmanager that routes to a local webhook:
// an alert reaches the receiver only after `for`, with its labels, once although it is re-sent;
// it resolves there when the condition clears; and an Alertmanager that was down gets what it
// missed once it is back.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseRuleFile, type RunningAlerter, startAlerter } from '@ebbflow/alerter'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'
import { alertmanagerMissing, freePort, LocalAlertmanager } from '../support/alertmanager.ts'
import { type Received, WebhookReceiver } from '../support/webhook-receiver.ts'

const missing = alertmanagerMissing()
const METRIC = `am_e2e_${process.pid}`

const RULES = `rules:
  - name: NodeGaugeHigh
    every: 1s
    for: 2s
    condition: value > 0
    severity: warning
    annotations:
      summary: "{{ $labels.node }} is at {{ $value }}"
    sql: |
      SELECT node AS label_node, argMax(value, time) AS value
      FROM ebbflow.collector_stats WHERE metric = '${METRIC}' GROUP BY node
`

const alertsOf = (received: readonly Received[], node: string, status: string) =>
  received.flatMap((r) =>
    (r.body.alerts as { status: string; labels: Record<string, string> }[])
      .filter((a) => a.labels.node === node && a.status === status)
      .map((a) => ({ ...a, at: r.at, groupStatus: r.body.status })),
  )

describe('alerter → real Alertmanager → webhook', { skip: missing, timeout: 90_000 }, () => {
  let dir: string
  let store: ChdbStore
  let hook: WebhookReceiver
  let am: LocalAlertmanager
  let alerter: RunningAlerter
  let seq = 0
  const setGauge = async (node: string, value: number) => {
    seq++
    await store.insert('ebbflow.collector_stats', [
      {
        time: new Date(Date.now() + seq).toISOString().replace('T', ' ').replace('Z', ''),
        node,
        metric: METRIC,
        value,
      },
    ])
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-am-e2e-'))
    store = await ChdbStore.open(dir)
    await migrate(store)
    hook = await new WebhookReceiver().start()
    am = new LocalAlertmanager(await freePort(), hook.url, ['alertname', 'node'])
    await am.start()
    const problems: string[] = []
    const rules = parseRuleFile('e2e.yaml', RULES, problems)
    assert.deepEqual(problems, [])
    alerter = startAlerter(
      rules,
      {
        alertmanagers: [am.url],
        webhooks: [],
        resend: 2000,
        lagMargin: 0,
        deliveryHorizon: 3_600_000,
        httpTimeout: 2000,
        webhookAttempts: 1,
        replica: 'e2e',
      },
      { store, logger: createLogger('alert-e2e', 'silent') },
    )
  })

  after(async () => {
    await alerter?.stop()
    await am?.close()
    await hook?.close()
    await store?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('fires after `for` with its labels, once despite re-sends, and resolves', async () => {
    const setAt = Date.now()
    await setGauge('node-a', 7)
    await hook.waitFor((r) => alertsOf(r, 'node-a', 'firing').length > 0, 20_000, 'node-a firing')
    const [firing] = alertsOf(hook.received, 'node-a', 'firing')
    assert.ok(
      firing!.at - setAt >= 2000,
      `reached the receiver ${firing!.at - setAt} ms after the row; for is 2s`,
    )
    assert.deepEqual(firing!.labels, {
      alertname: 'NodeGaugeHigh',
      node: 'node-a',
      severity: 'warning',
    })
    // Re-sent every 2 s meanwhile; Alertmanager notifies once (repeat_interval 1h).
    await new Promise((r) => setTimeout(r, 5000))
    assert.equal(alertsOf(hook.received, 'node-a', 'firing').length, 1)
    await setGauge('node-a', 0)
    await hook.waitFor(
      (r) => alertsOf(r, 'node-a', 'resolved').length > 0,
      20_000,
      'node-a resolved',
    )
  })

  it('an Alertmanager that was down gets the alert once it is back', async () => {
    await am.stop()
    await setGauge('node-b', 3)
    // Firing in the store while Alertmanager is down.
    const deadline = Date.now() + 20_000
    for (;;) {
      const rows = await store.query<{ n: string }>(
        `SELECT count() AS n FROM ebbflow.alert_state FINAL
         WHERE rule = 'NodeGaugeHigh' AND labels['node'] = 'node-b' AND state = 'firing' AND NOT deleted`,
      )
      if (Number(rows[0]?.n) > 0) break
      assert.ok(Date.now() < deadline, 'node-b never fired in the store')
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.equal(alertsOf(hook.received, 'node-b', 'firing').length, 0)
    await am.start()
    await hook.waitFor(
      (r) => alertsOf(r, 'node-b', 'firing').length > 0,
      20_000,
      'node-b firing after restart',
    )
  })
})
