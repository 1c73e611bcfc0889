// The collectors' own statistics. collector_stats has no namespace: it describes nodes, so only
// a caller that may read every namespace sees it.
import type { QueryContext } from '../context.ts'
import { num, Params, where } from '../sql.ts'

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
    }
  >()
  for (const r of rows) {
    let h = byNode.get(r.node)
    if (!h) {
      h = { node: r.node, lastSeen: r.last_seen, totalDrops: 0, drops: [], ingestLag: [] }
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
  return [...byNode.values()]
}
