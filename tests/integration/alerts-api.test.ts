// GraphQL `alerts`, `alertHistory` and `alertRules` over what the alerter really wrote: the
// test makes one rule fire for a pod of `shop`, one of `bank` and one node (no namespace), then
// reads them back with tokens scoped to namespaces.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Alerter, parseRuleFile } from '@ebbflow/alerter'
import { type Api, createApi } from '@ebbflow/api'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'

const logger = createLogger('alerts-api-test', 'silent')
const TOKENS = { shop: 'token-shop-0123456789', admin: 'token-admin-012345678' }
const T = Math.floor(Date.now() / 1000) * 1000

const RULES = `rules:
  - name: PodGauge
    every: 1s
    condition: value > 0
    annotations: { summary: "{{ $labels.pod }} at {{ $value }}" }
    sql: |
      SELECT node AS label_node, family AS label_namespace, reason AS label_pod,
             argMax(value, time) AS value
      FROM ebbflow.collector_stats WHERE metric = 'api_test' GROUP BY node, family, reason
`

describe('GraphQL alerts', { timeout: 60_000 }, () => {
  let dir: string
  let store: ChdbStore
  let api: Api
  const query = async (token: string, q: string, variables: Record<string, unknown> = {}) => {
    const res = await api.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: q, variables }),
    })
    const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] }
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    return body.data!
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-alerts-api-'))
    store = await ChdbStore.open(dir)
    await migrate(store)
    const problems: string[] = []
    const [rule] = parseRuleFile('api.yaml', RULES, problems)
    const gauge = (namespace: string, pod: string, value: number, k: number) => ({
      time: new Date(T + k).toISOString().replace('T', ' ').replace('Z', ''),
      node: 'n1',
      metric: 'api_test',
      family: namespace,
      reason: pod,
      value,
    })
    const evaluateAt = (k: number) =>
      new Alerter(
        [rule!],
        {
          alertmanagers: [],
          webhooks: [],
          resend: 60_000,
          lagMargin: 0,
          deliveryHorizon: 3_600_000,
          httpTimeout: 1000,
          webhookAttempts: 1,
          replica: 'api-test',
        },
        { store, logger, now: () => T + k * 1000 },
      ).evaluateRule(rule!)
    await store.insert('ebbflow.collector_stats', [
      gauge('shop', 'web-1', 3, 1),
      gauge('bank', 'api-1', 4, 2),
      gauge('', 'node-level', 5, 3),
    ])
    await evaluateAt(0)
    await store.insert('ebbflow.collector_stats', [gauge('shop', 'web-1', 0, 4)])
    await evaluateAt(1)
    api = createApi({
      store,
      tokens: { [TOKENS.shop]: ['shop'], [TOKENS.admin]: ['*'] },
      logger,
    })
  })
  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('alerts: current instances, scoped by namespace', async () => {
    const q = `{ alerts { rule state namespace labels annotations value firedAt resolvedAt } }`
    const shop = (await query(TOKENS.shop, q)).alerts as Record<string, unknown>[]
    assert.deepEqual(shop, [
      {
        rule: 'PodGauge',
        state: 'resolved',
        namespace: 'shop',
        labels: { node: 'n1', namespace: 'shop', pod: 'web-1', alertname: 'PodGauge' },
        annotations: { summary: 'web-1 at 3' },
        value: 3,
        firedAt: new Date(T).toISOString(),
        resolvedAt: new Date(T + 1000).toISOString(),
      },
    ])
    const all = (await query(TOKENS.admin, q)).alerts as { namespace: string; state: string }[]
    assert.deepEqual(all.map((a) => `${a.namespace}:${a.state}`).sort(), [
      ':firing',
      'bank:firing',
      'shop:resolved',
    ])
    const firing = (
      await query(TOKENS.admin, `{ alerts(state: firing, namespace: "bank") { labels } }`)
    ).alerts as { labels: Record<string, string> }[]
    assert.deepEqual(
      firing.map((a) => a.labels.pod),
      ['api-1'],
    )
  })

  it('alertHistory: transitions newest first, scoped; alertRules for every-namespace callers', async () => {
    const q = `{ alertHistory { time from to namespace labels } }`
    const shop = (await query(TOKENS.shop, q)).alertHistory as Record<string, unknown>[]
    // Newest first; the two transitions of one evaluation share its time.
    assert.equal(
      `${shop[0]!.from}>${shop[0]!.to}@${shop[0]!.time}`,
      `firing>resolved@${new Date(T + 1000).toISOString()}`,
    )
    assert.deepEqual(
      shop
        .slice(1)
        .map((t) => `${t.from}>${t.to}@${t.time}`)
        .sort(),
      [
        `inactive>pending@${new Date(T).toISOString()}`,
        `pending>firing@${new Date(T).toISOString()}`,
      ],
    )
    const all = (await query(TOKENS.admin, q)).alertHistory as unknown[]
    assert.equal(all.length, 3 + 2 + 2)
    assert.deepEqual((await query(TOKENS.shop, '{ alertRules { rule } }')).alertRules, [])
    const rules = (await query(TOKENS.admin, '{ alertRules { rule health error instances } }'))
      .alertRules
    assert.deepEqual(rules, [{ rule: 'PodGauge', health: 'ok', error: null, instances: 3 }])
  })
})
