// Service map: workloads as nodes, client → server connections as edges (port, connections,
// bytes), laid out by Cytoscape.js. Selecting a node shows its connections and its traffic over
// time (uPlot). The connections table below the map lists every connection of the window,
// loopback ones included (the map leaves those out: both ends are the same workload).
import 'uplot/dist/uPlot.min.css'
import cytoscape from 'cytoscape'
import uPlot from 'uplot'
import { gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { bytes, clock, count, duration, timeMs } from '../format.ts'
import { update, window_ } from '../route.ts'

interface MapNode {
  id: string
  namespace: string | null
  kind: string
  name: string
  external: boolean
  address: string | null
}
interface MapEdge {
  source: string
  target: string
  port: number
  connections: number
  failedConnections: number
  bytesSent: number
  bytesReceived: number
}
interface Conn {
  time: string
  event: string
  role: string
  node: string
  namespace: string | null
  pod: string | null
  workloadName: string | null
  pid: number
  comm: string
  sourceAddress: string
  sourcePort: number
  destinationAddress: string
  destinationPort: number
  bytesSent: number
  bytesReceived: number
  durationNs: number
}
interface Point {
  time: string
  ingressBytes: number
  egressBytes: number
}

const MAP = `query($filter: EventFilter!) {
  serviceMap(filter: $filter) {
    nodes { id namespace kind name external address }
    edges { source target port connections failedConnections bytesSent bytesReceived }
  }
}`
const CONNECTIONS = `query($filter: EventFilter!) {
  connections(filter: $filter, events: [close, connect_failed], last: 300) {
    edges { node { time event role node namespace pod workloadName pid comm sourceAddress sourcePort destinationAddress destinationPort bytesSent bytesReceived durationNs } }
  }
}`
const SERIES = `query($filter: EventFilter!, $step: String) {
  trafficSeries(filter: $filter, step: $step) { time ingressBytes egressBytes }
}`

/** The connections of one map node, judged from a connection row. */
function belongsTo(c: Conn, n: MapNode): boolean {
  if (n.external) return c.destinationAddress === n.address || c.sourceAddress === n.address
  if (n.kind === 'Host') return !c.namespace && c.node === n.name
  if (c.namespace !== n.namespace) return false
  return n.kind === 'Pod' ? c.pod === n.name : c.workloadName === n.name
}

/** The traffic filter of a map node: its pod, its namespace for a controller, its host. */
function seriesFilter(n: MapNode, base: Record<string, string>): Record<string, string> | null {
  if (n.external) return null
  if (n.kind === 'Host') return { ...base, node: n.name }
  return n.kind === 'Pod'
    ? { ...base, namespace: n.namespace ?? '', pod: n.name }
    : { ...base, namespace: n.namespace ?? '' }
}

function stepFor(ms: number): string {
  if (ms <= 2 * 3600_000) return '1m'
  if (ms <= 24 * 3600_000) return '5m'
  return '1h'
}

export function mapView(root: HTMLElement, params: URLSearchParams): () => void {
  const window = window_(params)
  const filter = eventFilter(params, window)
  const selected = params.get('node')
  const graph = h('div', { class: 'graph', 'aria-label': 'service map' })
  const side = h('aside', { class: 'detail' })
  const edgeList = h('details', { class: 'edge-list' })
  const table = h('div', {}, note('Loading connections…'))
  const q = params.get('q') ?? ''
  fill(
    root,
    h('h1', {}, 'Service map'),
    filterBar(params, [
      ...WHERE,
      { key: 'q', label: 'Search', placeholder: 'process, address or port' },
    ]),
    h('div', { class: 'map' }, graph, side),
    edgeList,
    h('h2', {}, 'Connections'),
    table,
  )
  const abort = new AbortController()
  let cy: cytoscape.Core | undefined
  let plot: uPlot | undefined
  const fail = (where: HTMLElement, what: string) => (err: unknown) => {
    if (!abort.signal.aborted) fill(where, note(`${what}: ${(err as Error).message}`, 'error'))
  }

  const connectionsP = gql<{ connections: { edges: { node: Conn }[] } }>(
    CONNECTIONS,
    { filter },
    abort.signal,
  ).then((d) => d.connections.edges.map((e) => e.node).reverse())

  const connTable = (rows: Conn[]) =>
    h(
      'table',
      { class: 'connections' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Closed'),
          h('th', {}, 'Process'),
          h('th', {}, 'Where'),
          h('th', {}, 'From'),
          h('th', {}, 'To'),
          h('th', {}, 'Sent'),
          h('th', {}, 'Received'),
          h('th', {}, 'Lasted'),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((c) =>
          h(
            'tr',
            { class: c.event === 'connect_failed' ? 'bad' : undefined },
            h('td', { class: 'time' }, clock(c.time)),
            h(
              'td',
              {},
              c.comm || (c.role === 'passive' ? '(accepted)' : ''),
              c.pid ? ` ${c.pid}` : '',
            ),
            h('td', {}, c.namespace ? `${c.namespace}/${c.pod ?? ''}` : `host ${c.node}`),
            h('td', { class: 'mono' }, `${c.sourceAddress}:${c.sourcePort}`),
            h(
              'td',
              { class: 'mono' },
              `${c.destinationAddress}:${c.destinationPort}`,
              c.event === 'connect_failed' ? ' (failed)' : '',
            ),
            h('td', { class: 'num' }, bytes(c.bytesSent)),
            h('td', { class: 'num' }, bytes(c.bytesReceived)),
            h('td', { class: 'num' }, duration(c.durationNs)),
          ),
        ),
      ),
    )

  connectionsP.then(
    (rows) => {
      const needle = q.toLowerCase()
      const shown = needle
        ? rows.filter((c) =>
            [
              c.comm,
              c.sourceAddress,
              c.destinationAddress,
              String(c.sourcePort),
              String(c.destinationPort),
              c.pod ?? '',
            ]
              .join(' ')
              .toLowerCase()
              .includes(needle),
          )
        : rows
      fill(table, shown.length ? connTable(shown) : note('No connections in this window.'))
    },
    fail(table, 'Connections'),
  )

  gql<{ serviceMap: { nodes: MapNode[]; edges: MapEdge[] } }>(MAP, { filter }, abort.signal).then(
    ({ serviceMap: m }) => {
      if (m.nodes.length === 0) {
        fill(
          graph,
          note(
            'No connections between workloads in this window (loopback connections are listed below).',
          ),
        )
        fill(side)
        return
      }
      cy = cytoscape({
        container: graph,
        elements: [
          ...m.nodes.map((n) => ({
            data: { id: n.id, label: n.external ? n.name : `${n.name}\n${n.kind}`, kind: n.kind },
            classes: n.external ? 'external' : n.kind === 'Host' ? 'host' : 'workload',
          })),
          ...m.edges.map((e) => ({
            data: {
              id: `${e.source}→${e.target}:${e.port}`,
              source: e.source,
              target: e.target,
              label: `:${e.port} · ${count(e.connections)}× · ${bytes(e.bytesSent + e.bytesReceived)}`,
              failed: e.failedConnections > 0 ? 1 : 0,
            },
          })),
        ],
        layout: { name: m.nodes.length > 40 ? 'grid' : 'cose', animate: false },
        style: [
          {
            selector: 'node',
            style: {
              label: 'data(label)',
              'text-wrap': 'wrap',
              'font-size': 11,
              color: '#d8dee9',
              'text-valign': 'bottom',
              'text-margin-y': 4,
              'background-color': '#5e81ac',
              width: 26,
              height: 26,
            },
          },
          { selector: 'node.external', style: { 'background-color': '#a3a3a3', shape: 'diamond' } },
          {
            selector: 'node.host',
            style: { 'background-color': '#b48ead', shape: 'round-rectangle' },
          },
          { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#ebcb8b' } },
          {
            selector: 'edge',
            style: {
              label: 'data(label)',
              'font-size': 9,
              color: '#aab',
              width: 1.5,
              'line-color': '#6b7b8f',
              'target-arrow-color': '#6b7b8f',
              'target-arrow-shape': 'triangle',
              'curve-style': 'bezier',
              'text-rotation': 'autorotate',
            },
          },
          {
            selector: 'edge[failed = 1]',
            style: { 'line-color': '#bf616a', 'line-style': 'dashed' },
          },
        ],
      })
      cy.on('tap', 'node', (ev) => update({ node: ev.target.id() }))
      // The same edges as text: for readers of the page who cannot see the drawing, and to copy.
      const names = new Map(
        m.nodes.map((n) => [n.id, n.external ? n.name : `${n.name} (${n.kind})`]),
      )
      fill(
        edgeList,
        h('summary', {}, `${count(m.edges.length)} edges as a table`),
        h(
          'table',
          { class: 'edges' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Client'),
              h('th', {}, 'Server'),
              h('th', {}, 'Port'),
              h('th', {}, 'Connections'),
              h('th', {}, 'Failed'),
              h('th', {}, 'Sent'),
              h('th', {}, 'Received'),
            ),
          ),
          h(
            'tbody',
            {},
            m.edges.map((e) =>
              h(
                'tr',
                {},
                h('td', {}, names.get(e.source) ?? e.source),
                h('td', {}, names.get(e.target) ?? e.target),
                h('td', { class: 'num' }, e.port),
                h('td', { class: 'num' }, count(e.connections)),
                h('td', { class: 'num' }, count(e.failedConnections)),
                h('td', { class: 'num' }, bytes(e.bytesSent)),
                h('td', { class: 'num' }, bytes(e.bytesReceived)),
              ),
            ),
          ),
        ),
      )
      const node = selected ? m.nodes.find((n) => n.id === selected) : undefined
      if (node) {
        cy.getElementById(node.id).select()
        showNode(node)
      } else fill(side, note('Select a workload for its connections and traffic.'))
    },
    fail(graph, 'Service map'),
  )

  const showNode = (n: MapNode) => {
    const chart = h('div', { class: 'chart' })
    const list = h('div', {}, note('Loading…'))
    fill(
      side,
      h('h2', {}, n.name, ' ', h('small', {}, n.kind)),
      n.namespace ? h('p', {}, `namespace ${n.namespace}`) : null,
      h('h3', {}, 'Traffic'),
      chart,
      h('h3', {}, 'Connections'),
      list,
    )
    connectionsP.then(
      (rows) => {
        const mine = rows.filter((c) => belongsTo(c, n)).slice(0, 50)
        fill(
          list,
          mine.length
            ? h(
                'ul',
                { class: 'node-connections' },
                mine.map((c) =>
                  h(
                    'li',
                    { class: 'mono' },
                    `${c.comm} → ${c.destinationAddress}:${c.destinationPort} · ${bytes(c.bytesSent)} / ${bytes(c.bytesReceived)}`,
                  ),
                ),
              )
            : note('No closed connections of its own in this window.'),
        )
      },
      fail(list, 'Connections'),
    )
    const sf = seriesFilter(n, { from: filter.from!, ...(filter.to ? { to: filter.to } : {}) })
    if (!sf) {
      fill(chart, note('External addresses have no traffic counters.'))
      return
    }
    const span = (filter.to ? timeMs(filter.to) : Date.now()) - timeMs(filter.from!)
    gql<{ trafficSeries: Point[] }>(SERIES, { filter: sf, step: stepFor(span) }, abort.signal).then(
      ({ trafficSeries: points }) => {
        if (points.length === 0) {
          fill(chart, note('No traffic counted in this window.'))
          return
        }
        plot = new uPlot(
          {
            width: 380,
            height: 180,
            series: [
              {},
              { label: 'ingress', stroke: '#88c0d0', value: (_u, v) => bytes(v) },
              { label: 'egress', stroke: '#d08770', value: (_u, v) => bytes(v) },
            ],
            axes: [
              { stroke: '#aab' },
              { stroke: '#aab', values: (_u, vs) => vs.map((v) => bytes(v)), size: 70 },
            ],
          },
          [
            points.map((p) => timeMs(p.time) / 1000),
            points.map((p) => p.ingressBytes),
            points.map((p) => p.egressBytes),
          ],
          chart,
        )
      },
      fail(chart, 'Traffic'),
    )
  }

  return () => {
    abort.abort()
    cy?.destroy()
    plot?.destroy()
  }
}
