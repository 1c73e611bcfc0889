// Prometheus' alerting-rule semantics, driven by the test's own clock: each case lists, per
// evaluation, whether the row is there, and the state and transitions the test expects.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type ActiveAlert,
  alertsToSend,
  evaluate,
  fingerprint,
  needsSending,
  RESOLVED_RETENTION_MS,
  type Sample,
} from '../../src/state.ts'

const S = 1000
const T0 = Date.UTC(2026, 0, 1)
const labels = { alertname: 'X', pod: 'p' }
const sample: Sample = { labels, annotations: {}, value: 1 }
const fp = fingerprint(labels)

interface Step {
  at: number
  present: boolean
  state: 'pending' | 'firing' | 'resolved' | 'gone'
  moves?: string[]
}

function run(rule: { forMs: number; keepFiringForMs: number }, steps: Step[]) {
  let active = new Map<string, ActiveAlert>()
  for (const step of steps) {
    const out = evaluate({ name: 'X', ...rule }, active, step.present ? [sample] : [], T0 + step.at)
    active = out.active
    const a = active.get(fp)
    assert.equal(a?.state ?? 'gone', step.state, `state at +${step.at / S}s`)
    assert.deepEqual(
      out.transitions.map((t) => `${t.from}>${t.to}`),
      step.moves ?? [],
      `transitions at +${step.at / S}s`,
    )
  }
  return active
}

describe('state machine (Prometheus rules/alerting.go)', { timeout: 10_000 }, () => {
  const cases: { name: string; rule: { forMs: number; keepFiringForMs: number }; steps: Step[] }[] =
    [
      {
        name: 'for 0 fires at the first evaluation',
        rule: { forMs: 0, keepFiringForMs: 0 },
        steps: [
          { at: 0, present: true, state: 'firing', moves: ['inactive>pending', 'pending>firing'] },
          { at: S, present: false, state: 'resolved', moves: ['firing>resolved'] },
        ],
      },
      {
        name: 'pending until active for `for`, then firing',
        rule: { forMs: 2 * S, keepFiringForMs: 0 },
        steps: [
          { at: 0, present: true, state: 'pending', moves: ['inactive>pending'] },
          { at: S, present: true, state: 'pending' },
          { at: 2 * S, present: true, state: 'firing', moves: ['pending>firing'] },
          { at: 3 * S, present: true, state: 'firing' },
          { at: 4 * S, present: false, state: 'resolved', moves: ['firing>resolved'] },
        ],
      },
      {
        name: 'a pending alert whose row is gone is dropped, never resolved',
        rule: { forMs: 5 * S, keepFiringForMs: 0 },
        steps: [
          { at: 0, present: true, state: 'pending', moves: ['inactive>pending'] },
          { at: S, present: false, state: 'gone', moves: ['pending>inactive'] },
          { at: 2 * S, present: true, state: 'pending', moves: ['inactive>pending'] },
        ],
      },
      {
        name: 'keep_firing_for keeps it firing after the row is gone, then resolves',
        rule: { forMs: 0, keepFiringForMs: 3 * S },
        steps: [
          { at: 0, present: true, state: 'firing', moves: ['inactive>pending', 'pending>firing'] },
          { at: S, present: false, state: 'firing' },
          { at: 3 * S, present: false, state: 'firing' },
          { at: 4 * S, present: false, state: 'resolved', moves: ['firing>resolved'] },
        ],
      },
      {
        name: 'a row back within keep_firing_for resets it',
        rule: { forMs: 0, keepFiringForMs: 2 * S },
        steps: [
          { at: 0, present: true, state: 'firing', moves: ['inactive>pending', 'pending>firing'] },
          { at: S, present: false, state: 'firing' },
          { at: 2 * S, present: true, state: 'firing' },
          { at: 3 * S, present: false, state: 'firing' },
          { at: 4 * S, present: false, state: 'firing' },
          { at: 5 * S, present: false, state: 'resolved', moves: ['firing>resolved'] },
        ],
      },
      {
        name: 'a resolved alert that comes back starts pending again',
        rule: { forMs: S, keepFiringForMs: 0 },
        steps: [
          { at: 0, present: true, state: 'pending', moves: ['inactive>pending'] },
          { at: S, present: true, state: 'firing', moves: ['pending>firing'] },
          { at: 2 * S, present: false, state: 'resolved', moves: ['firing>resolved'] },
          { at: 3 * S, present: true, state: 'pending', moves: ['resolved>pending'] },
        ],
      },
      {
        name: 'a resolved alert is kept 15 minutes, then dropped',
        rule: { forMs: 0, keepFiringForMs: 0 },
        steps: [
          { at: 0, present: true, state: 'firing', moves: ['inactive>pending', 'pending>firing'] },
          { at: S, present: false, state: 'resolved', moves: ['firing>resolved'] },
          { at: S + RESOLVED_RETENTION_MS, present: false, state: 'resolved' },
          { at: 2 * S + RESOLVED_RETENTION_MS, present: false, state: 'gone' },
        ],
      },
    ]
  for (const c of cases)
    it(c.name, () => {
      run(c.rule, c.steps)
    })

  it('transition ids are the same whoever computes them, and differ per activation', () => {
    const a = evaluate({ name: 'X', forMs: 0, keepFiringForMs: 0 }, new Map(), [sample], T0)
    const b = evaluate({ name: 'X', forMs: 0, keepFiringForMs: 0 }, new Map(), [sample], T0)
    assert.deepEqual(
      a.transitions.map((t) => t.id),
      b.transitions.map((t) => t.id),
    )
    const later = evaluate({ name: 'X', forMs: 0, keepFiringForMs: 0 }, new Map(), [sample], T0 + S)
    assert.notEqual(later.transitions[0]!.id, a.transitions[0]!.id)
  })
})

describe('sending (Prometheus needsSending / sendAlerts)', { timeout: 10_000 }, () => {
  const rule = { name: 'X', forMs: 0, keepFiringForMs: 0 }
  const resend = 60 * S
  const interval = 10 * S

  it('never sends pending; firing is re-sent every resend with endsAt = now + 4 × max(interval, resend)', () => {
    const pending = evaluate({ ...rule, forMs: 5 * S }, new Map(), [sample], T0).active
    assert.equal(alertsToSend(pending, T0, interval, resend).length, 0)
    const { active } = evaluate(rule, new Map(), [sample], T0)
    const due = alertsToSend(active, T0, interval, resend)
    assert.equal(due.length, 1)
    assert.equal(due[0]!.postable.endsAt, new Date(T0 + 4 * resend).toISOString())
    assert.equal(due[0]!.postable.startsAt, new Date(T0).toISOString())
    const a = active.get(fp)!
    a.lastSentAt = T0
    assert.equal(needsSending(a, T0 + resend, resend), false, 'not before resend has passed')
    assert.equal(needsSending(a, T0 + resend + 1, resend), true)
    // An interval longer than resend sets the validity.
    const slow = alertsToSend(active, T0 + 2 * resend, 2 * resend, resend)
    assert.equal(slow[0]!.postable.endsAt, new Date(T0 + 2 * resend + 8 * resend).toISOString())
  })

  it('a resolved alert is sent at once with endsAt = its resolve time, then every resend for 15 minutes', () => {
    let { active } = evaluate(rule, new Map(), [sample], T0)
    active.get(fp)!.lastSentAt = T0
    active = evaluate(rule, active, [], T0 + 10 * S).active
    const due = alertsToSend(active, T0 + 10 * S, interval, resend)
    assert.equal(due.length, 1, 'sent at once although resend has not passed')
    assert.equal(due[0]!.postable.endsAt, new Date(T0 + 10 * S).toISOString())
    active.get(fp)!.lastSentAt = T0 + 10 * S
    assert.equal(alertsToSend(active, T0 + 20 * S, interval, resend).length, 0)
    assert.equal(alertsToSend(active, T0 + 71 * S, interval, resend).length, 1)
    const gone = evaluate(rule, active, [], T0 + 10 * S + RESOLVED_RETENTION_MS + 1).active
    assert.equal(gone.size, 0)
  })

  it('with holdUnsentResolved, an unsent resolution outlives the 15 minutes until it is sent', () => {
    let { active } = evaluate(rule, new Map(), [sample], T0)
    active.get(fp)!.lastSentAt = T0
    active = evaluate(rule, active, [], T0 + S).active
    const late = T0 + S + RESOLVED_RETENTION_MS + 1
    assert.equal(evaluate(rule, active, [], late, { holdUnsentResolved: true }).active.size, 1)
    active.get(fp)!.lastSentAt = late
    assert.equal(evaluate(rule, active, [], late + 1, { holdUnsentResolved: true }).active.size, 0)
  })
})
