// The alerter's tables (migration 0004): claims, state, transitions, deliveries. Nothing here
// is kept in memory between evaluations; every replica reads what the last one wrote.
import type { Store } from '@ebbflow/store'
import type { ActiveAlert, AlertState, Transition } from './state.ts'

export type RuleHealth = 'ok' | 'nodata' | 'error'

/** 'YYYY-MM-DD hh:mm:ss.mmm' in UTC: how ClickHouse reads a DateTime64(3) parameter or field. */
export function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '')
}

/** A DateTime64 read back from ClickHouse ('YYYY-MM-DD hh:mm:ss.mmm', UTC) in ms. */
export function fromChTime(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`)
}

export interface LastEvaluations {
  /** Highest slot claimed, and highest slot whose evaluation finished (-1: none). */
  claimed: number
  done: number
  /** Where the last finished evaluation's window ended (ms), 0 when none. */
  windowEnd: number
}

export class AlertStore {
  readonly store: Store
  readonly replica: string

  constructor(store: Store, replica: string) {
    this.store = store
    this.replica = replica
  }

  /**
   * Claims a rule's evaluation slot: of the replicas that insert the same token one row is
   * kept (insert deduplication), and reading it back says who won. Should two rows ever be kept
   * (a deduplication window outgrown), every replica still picks the same one.
   */
  async claimSlot(rule: string, slot: number, now: number): Promise<boolean> {
    await this.store.insert(
      'ebbflow.alert_evaluations',
      [{ time: chTime(now), rule, slot, phase: 'claim', replica: this.replica }],
      { dedupToken: `alert-claim:${rule}:${slot}` },
    )
    const rows = await this.store.query<{ replica: string }>(
      `SELECT replica FROM ebbflow.alert_evaluations
       WHERE rule = {rule:String} AND slot = {slot:UInt64} AND phase = 'claim'
       ORDER BY time, replica LIMIT 1`,
      { rule, slot },
    )
    return rows[0]?.replica === this.replica
  }

  async lastEvaluations(rule: string): Promise<LastEvaluations> {
    const [row] = await this.store.query<{ claimed: string; done: string; window_end: string }>(
      `SELECT toInt64(maxIf(slot, phase = 'claim')) - if(countIf(phase = 'claim') = 0, 1, 0) AS claimed,
              if(countIf(phase = 'done') = 0, -1, toInt64(maxIf(slot, phase = 'done'))) AS done,
              toString(argMaxIf(window_end, slot, phase = 'done')) AS window_end
       FROM ebbflow.alert_evaluations WHERE rule = {rule:String}`,
      { rule },
    )
    const done = Number(row?.done ?? -1)
    return {
      claimed: Number(row?.claimed ?? -1),
      done,
      windowEnd: done < 0 || !row ? 0 : fromChTime(row.window_end),
    }
  }

  async finishSlot(
    rule: string,
    slot: number,
    now: number,
    r: {
      windowStart: number
      windowEnd: number
      health: RuleHealth
      error: string
      rows: number
      instances: number
      durationMs: number
    },
  ): Promise<void> {
    await this.store.insert(
      'ebbflow.alert_evaluations',
      [
        {
          time: chTime(now),
          rule,
          slot,
          phase: 'done',
          replica: this.replica,
          window_start: chTime(r.windowStart),
          window_end: chTime(r.windowEnd),
          health: r.health,
          error: r.error,
          rows: r.rows,
          instances: r.instances,
          duration_ms: Math.round(r.durationMs),
        },
      ],
      { dedupToken: `alert-done:${rule}:${slot}` },
    )
  }

  async loadActive(rule: string): Promise<Map<string, ActiveAlert>> {
    const rows = await this.store.query<StateRow>(
      `SELECT fingerprint, state, labels, annotations, value,
              toString(active_at) AS active_at, toString(fired_at) AS fired_at,
              toString(resolved_at) AS resolved_at, toString(last_sent_at) AS last_sent_at,
              toString(keep_firing_since) AS keep_firing_since,
              toString(valid_until) AS valid_until
       FROM ebbflow.alert_state FINAL WHERE rule = {rule:String} AND NOT deleted`,
      { rule },
    )
    const out = new Map<string, ActiveAlert>()
    const t = (s: string) => {
      const v = fromChTime(s)
      return Math.max(v, 0)
    }
    for (const r of rows)
      out.set(r.fingerprint, {
        fingerprint: r.fingerprint,
        labels: r.labels,
        annotations: r.annotations,
        value: Number(r.value),
        state: r.state,
        activeAt: t(r.active_at),
        firedAt: t(r.fired_at),
        resolvedAt: t(r.resolved_at),
        lastSentAt: t(r.last_sent_at),
        keepFiringSince: t(r.keep_firing_since),
        validUntil: t(r.valid_until),
      })
    // An evaluation killed after writing its transitions and before writing the state they
    // led to: its transitions are the newest truth. Without this replay the next evaluation
    // starts from the older state, finds the same alert new again and announces it a second
    // time under another id (its activeAt is the new evaluation's time). One evaluation can
    // move an alert twice (to pending and, with no `for`, on to firing, at the same time): the
    // replay applies them in that order, not by the states' names ('firing' < 'pending'), or
    // the alert would be replayed as pending and derived again.
    const orphans = await this.store.query<TransitionRow>(
      `SELECT fingerprint, toString(to_state) AS to_state, labels, annotations, value,
              toString(active_at) AS active_at, toString(time) AS at
       FROM ebbflow.alert_transitions FINAL
       WHERE rule = {rule:String}
         AND slot > (SELECT toInt64(ifNull(max(slot), -1)) FROM ebbflow.alert_state
                     WHERE rule = {rule:String})
       ORDER BY slot, time, indexOf(['inactive', 'pending', 'firing', 'resolved'], to_state)`,
      { rule },
    )
    for (const o of orphans) {
      if (o.to_state === 'inactive') {
        out.delete(o.fingerprint)
        continue
      }
      const before = out.get(o.fingerprint)
      const at = t(o.at)
      out.set(o.fingerprint, {
        fingerprint: o.fingerprint,
        labels: o.labels,
        annotations: o.annotations,
        value: Number(o.value),
        state: o.to_state,
        activeAt: t(o.active_at),
        firedAt: o.to_state === 'firing' ? at : (before?.firedAt ?? 0),
        resolvedAt: o.to_state === 'resolved' ? at : 0,
        lastSentAt: before?.lastSentAt ?? 0,
        keepFiringSince: 0,
        validUntil: before?.validUntil ?? 0,
      })
    }
    return out
  }

  /** The rule's whole active set after `slot`; fingerprints that left it are marked deleted. */
  async saveActive(
    rule: string,
    slot: number,
    now: number,
    active: ReadonlyMap<string, ActiveAlert>,
    removed: Iterable<string>,
  ): Promise<void> {
    const rows: object[] = []
    for (const a of active.values()) rows.push(stateRow(rule, slot, now, a, false))
    for (const fp of removed)
      rows.push({
        rule,
        fingerprint: fp,
        slot,
        deleted: true,
        state: 'resolved',
        updated_at: chTime(now),
      })
    if (rows.length === 0) return
    await this.store.insert('ebbflow.alert_state', rows, {
      dedupToken: `alert-state:${rule}:${slot}`,
    })
  }

  async saveTransitions(slot: number, transitions: readonly Transition[]): Promise<void> {
    if (transitions.length === 0) return
    await this.store.insert(
      'ebbflow.alert_transitions',
      transitions.map((t) => ({
        time: chTime(t.at),
        id: t.id,
        rule: t.rule,
        fingerprint: t.fingerprint,
        namespace: t.alert.labels.namespace ?? '',
        from_state: t.from,
        to_state: t.to,
        labels: t.alert.labels,
        annotations: t.alert.annotations,
        value: t.alert.value,
        active_at: chTime(t.alert.activeAt),
        slot,
        replica: this.replica,
      })),
      { dedupToken: `alert-transitions:${transitions[0]!.rule}:${slot}` },
    )
  }

  /**
   * Firing and resolved transitions of a rule not yet delivered to `target` and not under a live
   * claim (one younger than `leaseMs` without an outcome), with the generation the next claim
   * takes.
   */
  async undelivered(
    rule: string,
    target: string,
    sinceMs: number,
    now: number,
    leaseMs: number,
  ): Promise<(PendingDelivery & { generation: number })[]> {
    const transitions = await this.store.query<PendingDelivery>(
      `SELECT id, rule, fingerprint, toString(from_state) AS from_state,
              toString(to_state) AS to_state, labels, annotations, value,
              toString(time) AS at, toString(active_at) AS active_at
       FROM ebbflow.alert_transitions FINAL
       WHERE rule = {rule:String} AND to_state IN ('firing', 'resolved')
         AND time >= {since:DateTime64(3, 'UTC')}
       ORDER BY time, id`,
      { rule, since: chTime(sinceMs) },
    )
    if (transitions.length === 0) return []
    const deliveries = await this.store.query<{
      transition_id: string
      generation: number | string
      phase: 'claim' | 'delivered' | 'failed'
      time: string
    }>(
      `SELECT transition_id, generation, toString(phase) AS phase, toString(time) AS time
       FROM ebbflow.alert_deliveries
       WHERE target = {target:String} AND has({ids:Array(String)}, transition_id)`,
      { target, ids: transitions.map((t) => t.id) },
    )
    const byId = new Map<string, typeof deliveries>()
    for (const d of deliveries) {
      const list = byId.get(d.transition_id) ?? []
      list.push(d)
      byId.set(d.transition_id, list)
    }
    const out: (PendingDelivery & { generation: number })[] = []
    for (const t of transitions) {
      const ds = byId.get(t.id) ?? []
      if (ds.some((d) => d.phase === 'delivered')) continue
      const claims = ds.filter((d) => d.phase === 'claim')
      let generation = 0
      if (claims.length > 0) {
        const last = claims.reduce((a, b) => (Number(b.generation) > Number(a.generation) ? b : a))
        generation = Number(last.generation) + 1
        const closed = ds.some(
          (d) => d.phase !== 'claim' && Number(d.generation) === Number(last.generation),
        )
        if (!closed && fromChTime(last.time) > now - leaseMs) continue
      }
      out.push({ ...t, value: Number(t.value), generation })
    }
    return out
  }

  /** Claims one delivery generation; true when this replica won it. */
  async claimDelivery(
    target: string,
    id: string,
    generation: number,
    now: number,
  ): Promise<boolean> {
    await this.store.insert(
      'ebbflow.alert_deliveries',
      [
        {
          time: chTime(now),
          target,
          transition_id: id,
          generation,
          phase: 'claim',
          replica: this.replica,
        },
      ],
      { dedupToken: `alert-deliver:${target}:${id}:${generation}` },
    )
    const rows = await this.store.query<{ replica: string }>(
      `SELECT replica FROM ebbflow.alert_deliveries
       WHERE target = {target:String} AND transition_id = {id:String}
         AND generation = {generation:UInt32} AND phase = 'claim'
       ORDER BY time, replica LIMIT 1`,
      { target, id, generation },
    )
    return rows[0]?.replica === this.replica
  }

  async deliveryOutcome(
    target: string,
    id: string,
    generation: number,
    now: number,
    outcome: 'delivered' | 'failed',
    attempts: number,
    error: string,
  ): Promise<void> {
    await this.store.insert(
      'ebbflow.alert_deliveries',
      [
        {
          time: chTime(now),
          target,
          transition_id: id,
          generation,
          phase: outcome,
          replica: this.replica,
          attempts,
          error,
        },
      ],
      { dedupToken: `alert-outcome:${target}:${id}:${generation}` },
    )
  }
}

export interface PendingDelivery {
  id: string
  rule: string
  fingerprint: string
  from_state: string
  to_state: string
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number
  /** When the transition happened ('YYYY-MM-DD hh:mm:ss.mmm', UTC). */
  at: string
  active_at: string
}

interface TransitionRow {
  fingerprint: string
  to_state: AlertState | 'inactive'
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number | string
  active_at: string
  at: string
}

interface StateRow {
  fingerprint: string
  state: AlertState
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number | string
  active_at: string
  fired_at: string
  resolved_at: string
  last_sent_at: string
  keep_firing_since: string
  valid_until: string
}

function stateRow(rule: string, slot: number, now: number, a: ActiveAlert, deleted: boolean) {
  return {
    rule,
    fingerprint: a.fingerprint,
    slot,
    deleted,
    namespace: a.labels.namespace ?? '',
    state: a.state,
    labels: a.labels,
    annotations: a.annotations,
    value: a.value,
    active_at: chTime(a.activeAt),
    fired_at: chTime(a.firedAt),
    resolved_at: chTime(a.resolvedAt),
    last_sent_at: chTime(a.lastSentAt),
    keep_firing_since: chTime(a.keepFiringSince),
    valid_until: chTime(a.validUntil),
    updated_at: chTime(now),
  }
}
