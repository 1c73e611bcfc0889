// Health: per collector node, when it last reported, the events/s its stored batches carried,
// what the kernel side and the publisher dropped (by family and reason), the batch accounting
// per collector instance (gaps, counted drops, unaccounted) and how far behind the ingester
// is. Refreshed every 5 s.
import { gql } from '../api.ts'
import { fill, h, note } from '../dom.ts'
import { count, dateTime } from '../format.ts'

interface Health {
  node: string
  lastSeen: string
  totalDrops: number
  drops: { family: string; reason: string; count: number }[]
  ingestLag: { family: string; latestMs: number }[]
  eventsPerSecond: number
  gapBatches: number
  droppedBatches: number
  unaccounted: number
  collectors: {
    instanceId: string
    family: string
    storedBatches: number
    storedEvents: number
    gapBatches: number
    droppedBatches: number
    droppedEvents: number
    unaccounted: number
  }[]
}

const QUERY = `{ collectorHealth { node lastSeen totalDrops drops { family reason count }
  ingestLag { family latestMs } eventsPerSecond gapBatches droppedBatches unaccounted
  collectors { instanceId family storedBatches storedEvents gapBatches droppedBatches
    droppedEvents unaccounted } } }`

/** One row per collector instance and family: what the batch ledger saw of its sequence. */
function accountingTable(n: Health): HTMLElement | null {
  if (n.collectors.length === 0) return null
  const heads = [
    'Collector',
    'Family',
    'Stored batches',
    'Events',
    'Gaps',
    'Counted drops',
    'Unaccounted',
  ]
  return h(
    'table',
    { class: 'accounting' },
    h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      n.collectors.map((c) =>
        h(
          'tr',
          { 'data-instance': c.instanceId, 'data-family': c.family },
          h('td', { title: c.instanceId }, c.instanceId.slice(0, 8)),
          h('td', {}, c.family),
          h('td', { class: 'num' }, count(c.storedBatches)),
          h('td', { class: 'num' }, count(c.storedEvents)),
          h('td', { class: 'num' }, count(c.gapBatches)),
          h(
            'td',
            { class: 'num' },
            `${count(c.droppedBatches)} (${count(c.droppedEvents)} events)`,
          ),
          h('td', { class: c.unaccounted === 0 ? 'num good' : 'num bad' }, count(c.unaccounted)),
        ),
      ),
    ),
  )
}

export function healthView(root: HTMLElement): () => void {
  const body = h('div', {}, note('Loading…'))
  fill(root, h('h1', {}, 'Health'), body)
  const abort = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  const load = () =>
    gql<{ collectorHealth: Health[] }>(QUERY, {}, abort.signal).then(
      ({ collectorHealth: nodes }) => {
        fill(
          body,
          nodes.length === 0
            ? note('No collector has reported yet (or your token may not read every namespace).')
            : nodes.map((n) =>
                h(
                  'section',
                  { class: 'node', 'data-node': n.node },
                  h('h2', {}, n.node),
                  h(
                    'dl',
                    {},
                    h('dt', {}, 'Last report'),
                    h('dd', {}, dateTime(n.lastSeen)),
                    h('dt', {}, 'Events/s (last minute)'),
                    h('dd', { class: 'rate' }, count(Math.round(n.eventsPerSecond))),
                    h('dt', {}, 'Drops'),
                    h('dd', { class: n.totalDrops > 0 ? 'bad' : 'good' }, count(n.totalDrops)),
                    h('dt', {}, 'Missing batches'),
                    h('dd', { class: 'gaps' }, count(n.gapBatches)),
                    h('dt', {}, 'Unaccounted batches'),
                    h(
                      'dd',
                      { class: n.unaccounted === 0 ? 'unaccounted good' : 'unaccounted bad' },
                      count(n.unaccounted),
                    ),
                  ),
                  accountingTable(n),
                  n.drops.length
                    ? h(
                        'table',
                        { class: 'drops' },
                        h(
                          'thead',
                          {},
                          h(
                            'tr',
                            {},
                            h('th', {}, 'Family'),
                            h('th', {}, 'Reason'),
                            h('th', {}, 'Dropped'),
                          ),
                        ),
                        h(
                          'tbody',
                          {},
                          n.drops.map((d) =>
                            h(
                              'tr',
                              {},
                              h('td', {}, d.family),
                              h('td', {}, d.reason),
                              h('td', { class: 'num' }, count(d.count)),
                            ),
                          ),
                        ),
                      )
                    : null,
                  h(
                    'table',
                    { class: 'lag' },
                    h(
                      'thead',
                      {},
                      h('tr', {}, h('th', {}, 'Family'), h('th', {}, 'Ingest lag (latest batch)')),
                    ),
                    h(
                      'tbody',
                      {},
                      n.ingestLag.map((l) =>
                        h(
                          'tr',
                          {},
                          h('td', {}, l.family),
                          h('td', { class: 'num' }, `${count(Math.round(l.latestMs))} ms`),
                        ),
                      ),
                    ),
                  ),
                ),
              ),
        )
        timer = setTimeout(load, 5000)
      },
      (err: unknown) => {
        if (!abort.signal.aborted) fill(body, note(`Health: ${(err as Error).message}`, 'error'))
      },
    )
  void load()
  return () => {
    abort.abort()
    clearTimeout(timer)
  }
}
