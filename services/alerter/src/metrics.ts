// The alerter's metrics (prom-client), one registry per alerter, and an optional /metrics
// endpoint for the scheduled mode (a --once run lives too briefly to be scraped).
import { Counter, Gauge, Registry } from 'prom-client'
import type { RuleHealth } from './store-state.ts'

const HEALTHS: readonly RuleHealth[] = ['ok', 'nodata', 'error']

export class AlerterMetrics {
  readonly registry = new Registry()
  readonly ruleHealth = new Gauge({
    name: 'ebbflow_rule_health',
    help: "1 for the rule's health at its last evaluation (ok, nodata, error), 0 for the others.",
    labelNames: ['rule', 'health'] as const,
    registers: [this.registry],
  })
  readonly evaluations = new Counter({
    name: 'ebbflow_alert_evaluations_total',
    help: 'Rule evaluations, by outcome: evaluated, skipped (slot done or claimed by another replica), failed (store).',
    labelNames: ['rule', 'outcome'] as const,
    registers: [this.registry],
  })
  readonly alerts = new Gauge({
    name: 'ebbflow_alerts',
    help: 'Active alerts of a rule after its last evaluation, by state.',
    labelNames: ['rule', 'state'] as const,
    registers: [this.registry],
  })
  readonly notifications = new Counter({
    name: 'ebbflow_alert_notifications_total',
    help: 'Sends to Alertmanager (per batch and instance) and webhooks (per transition), by result.',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  })

  setHealth(rule: string, health: RuleHealth): void {
    for (const h of HEALTHS) this.ruleHealth.set({ rule, health: h }, h === health ? 1 : 0)
  }
}
