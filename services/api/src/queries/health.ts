// The collectors' own statistics. collector_stats has no namespace: it describes nodes, so only
// a caller that may read every namespace sees it.
import { TOPICS } from '@ebbflow/common/wire'
import type { QueryContext } from '../query-context.ts'
import { num, Params, where } from '../sql.ts'

const FAMILY_OF_TOPIC = new Map(Object.entries(TOPICS).map(([family, topic]) => [topic, family]))

/** Missing sequence ranges listed per instance and topic, at most (the counts stay exact). */
const MAX_GAP_RANGES = 100

export interface SequenceRange {
  from: number
  to: number
}

/** One collector instance's batches on one topic, as the batch ledger (0006) saw them. */
export interface CollectorAccounting {
  instanceId: string
  bootId: string
  family: string
  topic: string
  firstStored: string
  lastStored: string
  /** Sequence numbers 0..highest stored: what the instance published on the topic, at least. */
  batches: number
  storedBatches: number
  storedEvents: number
  gapBatches: number
  droppedBatches: number
  droppedEvents: number
  unaccounted: number
  gaps: SequenceRange[]
}

/**
 * The batch ledger per node, collector instance and topic: the sequence numbers that never
 * reached the store (gaps) beside those the publisher reported dropping (queue_full drops
 * with their batch count). Each (instance, topic, sequence) counts once however often it
 * was delivered.
 */
export async function batchAccounting(
  ctx: QueryContext,
  node?: string | null,
): Promise<Map<string, CollectorAccounting[]>> {
  const p = new Params()
  const conditions = node == null ? [] : [`node = ${p.add('String', node)}`]
  const batches = `(SELECT node, collector_instance_id, topic, sequence, any(boot_id) AS boot_id,
        any(events) AS events, any(dropped_batches) AS dropped_batches,
        any(dropped_events) AS dropped_events, min(stored_at) AS stored_at
      FROM ebbflow.batch_ledger ${where(conditions)}
      GROUP BY node, collector_instance_id, topic, sequence)`
  const rows = await ctx.runner.select<{
    node: string
    instance: string
    boot_id: string
    topic: string
    batches: string
    stored: string
    events: string
    dropped_batches: string
    dropped_events: string
    first_stored: string
    last_stored: string
  }>(
    `SELECT node, collector_instance_id AS instance, any(boot_id) AS boot_id, topic,
            max(sequence) + 1 AS batches, count() AS stored, sum(events) AS events,
            sum(dropped_batches) AS dropped_batches, sum(dropped_events) AS dropped_events,
            toString(min(stored_at)) AS first_stored, toString(max(stored_at)) AS last_stored
     FROM ${batches}
     GROUP BY node, collector_instance_id, topic
     ORDER BY node, first_stored, instance, topic`,
    p,
  )
  const ranges = await ctx.runner.select<{
    node: string
    instance: string
    topic: string
    from_seq: string
    to_seq: string
  }>(
    `SELECT node, instance, topic, prev + 1 AS from_seq, toInt64(sequence) - 1 AS to_seq
     FROM (
       SELECT node, collector_instance_id AS instance, topic, sequence,
              lagInFrame(toInt64(sequence), 1, toInt64(-1)) OVER (
                PARTITION BY node, collector_instance_id, topic ORDER BY sequence
                ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
       FROM ${batches})
     WHERE toInt64(sequence) - prev > 1
     ORDER BY node, instance, topic, from_seq
     LIMIT ${MAX_GAP_RANGES} BY node, instance, topic`,
    p,
  )
  const key = (n: string, i: string, t: string) => `${n}\u0000${i}\u0000${t}`
  const gapsOf = new Map<string, SequenceRange[]>()
  for (const r of ranges) {
    const k = key(r.node, r.instance, r.topic)
    const list = gapsOf.get(k) ?? []
    if (list.length === 0) gapsOf.set(k, list)
    list.push({ from: num(r.from_seq), to: num(r.to_seq) })
  }
  const byNode = new Map<string, CollectorAccounting[]>()
  for (const r of rows) {
    const list = byNode.get(r.node) ?? []
    if (list.length === 0) byNode.set(r.node, list)
    const gapBatches = num(r.batches) - num(r.stored)
    list.push({
      instanceId: r.instance,
      bootId: r.boot_id,
      family: FAMILY_OF_TOPIC.get(r.topic) ?? '',
      topic: r.topic,
      firstStored: r.first_stored,
      lastStored: r.last_stored,
      batches: num(r.batches),
      storedBatches: num(r.stored),
      storedEvents: num(r.events),
      gapBatches,
      droppedBatches: num(r.dropped_batches),
      droppedEvents: num(r.dropped_events),
      unaccounted: gapBatches - num(r.dropped_batches),
      gaps: gapsOf.get(key(r.node, r.instance, r.topic)) ?? [],
    })
  }
  return byNode
}

/** Events per second each node's stored batches carried over the last `windowSeconds`. */
async function eventRates(ctx: QueryContext, node: string | null | undefined, windowSeconds = 60) {
  const p = new Params()
  const conditions = [`stored_at > now64(3) - INTERVAL ${windowSeconds} SECOND`]
  if (node != null) conditions.push(`node = ${p.add('String', node)}`)
  const rows = await ctx.runner.select<{ node: string; events: string }>(
    `SELECT node, sum(events) AS events FROM (
       SELECT node, collector_instance_id, topic, sequence, any(events) AS events
       FROM ebbflow.batch_ledger ${where(conditions)}
       GROUP BY node, collector_instance_id, topic, sequence)
     GROUP BY node`,
    p,
  )
  return new Map(rows.map((r) => [r.node, num(r.events) / windowSeconds]))
}

export async function collectorHealth(ctx: QueryContext, node?: string | null) {
  if (!ctx.scope.all) return []
  const p = new Params()
  const conditions = node == null ? [] : [`node = ${p.add('String', node)}`]
  const rows = await ctx.runner.select<{
    node: string
    metric: string
    family: string
    reason: string
    total: string
    latest: string
    last_seen: string
  }>(
    `SELECT node, metric, family, reason, sum(value) AS total, argMax(value, time) AS latest,
            toString(max(time)) AS last_seen
     FROM ebbflow.collector_stats ${where(conditions)}
     GROUP BY node, metric, family, reason ORDER BY node, metric, family, reason`,
    p,
  )
  const byNode = new Map<
    string,
    {
      node: string
      lastSeen: string
      totalDrops: number
      drops: { family: string; reason: string; count: number }[]
      ingestLag: { family: string; latestMs: number }[]
      eventsPerSecond: number
      collectors: CollectorAccounting[]
      gapBatches: number
      droppedBatches: number
      unaccounted: number
    }
  >()
  const accounting = await batchAccounting(ctx, node)
  const rates = await eventRates(ctx, node)
  const blank = (n: string, lastSeen: string) => {
    const collectors = accounting.get(n) ?? []
    const sum = (f: (c: CollectorAccounting) => number) => collectors.reduce((t, c) => t + f(c), 0)
    return {
      node: n,
      lastSeen,
      totalDrops: 0,
      drops: [],
      ingestLag: [],
      eventsPerSecond: rates.get(n) ?? 0,
      collectors,
      gapBatches: sum((c) => c.gapBatches),
      droppedBatches: sum((c) => c.droppedBatches),
      unaccounted: sum((c) => c.unaccounted),
    }
  }
  for (const r of rows) {
    let h = byNode.get(r.node)
    if (!h) {
      h = blank(r.node, r.last_seen)
      byNode.set(r.node, h)
    }
    if (r.last_seen > h.lastSeen) h.lastSeen = r.last_seen
    if (r.metric === 'drops') {
      h.drops.push({ family: r.family, reason: r.reason, count: num(r.total) })
      h.totalDrops += num(r.total)
    } else if (r.metric === 'ingest_lag_ms') {
      // How far behind its newest event the ingester took the node's latest batch.
      h.ingestLag.push({ family: r.family, latestMs: num(r.latest) })
    }
  }
  // A node known only from the ledger (no stats row yet) is still shown.
  for (const [n, collectors] of accounting)
    if (!byNode.has(n))
      byNode.set(
        n,
        blank(
          n,
          collectors
            .map((c) => c.lastStored)
            .sort()
            .at(-1) ?? '',
        ),
      )
  return [...byNode.values()]
}
