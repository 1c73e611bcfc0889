// Health: per collector node, when it last reported, what the kernel side dropped (by family
// and reason) and how far behind the ingester is. Refreshed every 5 s.
import { gql } from '../api.ts'
import { fill, h, note } from '../dom.ts'
import { count, dateTime } from '../format.ts'

interface Health {
  node: string
  lastSeen: string
  totalDrops: number
  drops: { family: string; reason: string; count: number }[]
  ingestLag: { family: string; latestMs: number }[]
}

const QUERY = `{ collectorHealth { node lastSeen totalDrops drops { family reason count } ingestLag { family latestMs } } }`

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
                    h('dt', {}, 'Drops'),
                    h('dd', { class: n.totalDrops > 0 ? 'bad' : 'good' }, count(n.totalDrops)),
                  ),
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
