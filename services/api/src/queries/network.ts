// TCP connections, the service map built from them, and traffic series.

import { userError } from '../errors.ts'
import { META_SELECT } from '../metadata.ts'
import {
  type Connection,
  isString,
  isTime,
  isUInt,
  type KeyColumn,
  type PageArgs,
  planPage,
  toConnection,
} from '../pagination.ts'
import type { QueryContext } from '../query-context.ts'
import { type EventFilter, filterConditions, num, Params, showAddress, where } from '../sql.ts'

/**
 * A TCP connection event, its columns aliased to the GraphQL field names where the value is
 * served as it is; `ts`, `ev` and `rl` because an alias naming a column (time, event, role)
 * would replace the column in WHERE and ORDER BY. 64-bit counters served as Float are read as
 * Float64 (ClickHouse's JSON quotes 64-bit integers).
 */
export interface ConnectionRow {
  ts: string
  ev: string
  rl: string
  node: string
  bootId: string
  namespace: string
  pod: string
  container: string
  function: string
  workloadKind: string
  workloadName: string
  sockId: string
  pid: number
  comm: string
  sourceAddress: string
  destinationAddress: string
  sourcePort: number
  destinationPort: number
  durationNs: number
  bytesSent: number
  bytesReceived: number
  cgroupId: string
  netnsIno: number
  ipVersion: number
}

const CONNECTION_KEY: KeyColumn[] = [
  { sql: 'time', type: "DateTime64(9, 'UTC')", check: isTime },
  { sql: 'node', type: 'String', check: isString },
  { sql: 'boot_id', type: 'String', check: isString },
  { sql: 'sock_id', type: 'UInt64', check: isUInt },
  { sql: 'toString(event)', type: 'String', check: isString },
]

export async function connections(
  ctx: QueryContext,
  filter: EventFilter,
  events: readonly string[] | null | undefined,
  args: PageArgs,
): Promise<Connection<ConnectionRow>> {
  const p = new Params()
  const plan = planPage('tcp', args, CONNECTION_KEY, ctx.limits, p)
  const conditions = filterConditions(filter, ctx.scope, p)
  if (events != null)
    conditions.push(`has(${p.add('Array(String)', [...events])}, toString(event))`)
  if (plan.condition) conditions.push(plan.condition)
  const rows = await ctx.runner.select<ConnectionRow>(
    `SELECT toString(time) AS ts, toString(event) AS ev, toString(role) AS rl, node,
       boot_id AS bootId, namespace, pod, container, function, workload_kind AS workloadKind,
       workload_name AS workloadName, toString(sock_id) AS sockId, pid, comm,
       IPv6NumToString(saddr) AS sourceAddress, IPv6NumToString(daddr) AS destinationAddress,
       sport AS sourcePort, dport AS destinationPort, toFloat64(duration_ns) AS durationNs,
       toFloat64(bytes_sent) AS bytesSent, toFloat64(bytes_received) AS bytesReceived,
       toString(cgroup_id) AS cgroupId, toFloat64(netns_ino) AS netnsIno, ip_family AS ipVersion,
       ${META_SELECT}
     FROM ebbflow.tcp_connections ${where(conditions)}
     ORDER BY ${plan.orderBy} LIMIT ${plan.limit}`,
    p,
  )
  return toConnection(
    'tcp',
    plan,
    args,
    rows,
    (r) => [r.ts, r.node, r.bootId, r.sockId, r.ev],
    (r) => ({
      ...r,
      sourceAddress: showAddress(r.sourceAddress),
      destinationAddress: showAddress(r.destinationAddress),
    }),
  )
}

/** A workload as the service map and the network policy name it. */
export interface Workload {
  id: string
  namespace: string
  kind: string
  name: string
  labels: Record<string, string>
}

/** The workload of a row: its controller, else its pod, else the node for host processes. */
export const WORKLOAD_KIND = `if(namespace = '', 'Host', if(workload_name != '', workload_kind, 'Pod'))`
export const WORKLOAD_NAME = `if(namespace = '', node, if(workload_name != '', workload_name, pod))`

export function workloadId(namespace: string, kind: string, name: string): string {
  return `${namespace}/${kind}/${name}`
}

const LOOPBACK = `(startsWith(IPv6NumToString(saddr), '::ffff:127.') OR saddr = toIPv6('::1'))`

/**
 * Which workload an address belonged to in the window, learnt from the local address of the
 * workload's own sockets. Only rows the caller may read are used: an address of a namespace
 * outside the caller's scope stays a bare address.
 */
export async function addressBook(
  ctx: QueryContext,
  window: { from?: string | null; to?: string | null },
): Promise<Map<string, Workload>> {
  const p = new Params()
  const conditions = [
    ...filterConditions({ from: window.from, to: window.to }, ctx.scope, p),
    `namespace != ''`,
    `NOT ${LOOPBACK}`,
  ]
  const rows = await ctx.runner.select<{
    addr: string
    w_namespace: string
    w_kind: string
    w_name: string
    w_labels: Record<string, string>
  }>(
    `SELECT IPv6NumToString(saddr) AS addr, argMax(namespace, time) AS w_namespace,
       argMax(${WORKLOAD_KIND}, time) AS w_kind, argMax(${WORKLOAD_NAME}, time) AS w_name,
       argMax(labels, time) AS w_labels
     FROM ebbflow.tcp_connections ${where(conditions)} GROUP BY addr`,
    p,
  )
  const book = new Map<string, Workload>()
  for (const r of rows)
    book.set(showAddress(r.addr), {
      id: workloadId(r.w_namespace, r.w_kind, r.w_name),
      namespace: r.w_namespace,
      kind: r.w_kind,
      name: r.w_name,
      labels: r.w_labels,
    })
  return book
}

export interface MapNode {
  id: string
  namespace: string | null
  kind: string
  name: string
  external: boolean
  address: string | null
}

export interface MapEdge {
  source: string
  target: string
  port: number
  connections: number
  failedConnections: number
  bytesSent: number
  bytesReceived: number
}

interface FlowRow {
  f_namespace: string
  f_kind: string
  f_name: string
  peer: string
  port: number
  opened: string
  failed: string
  sent: string
  received: string
  first_seen: string
  last_seen: string
}

/**
 * Flows of the filtered rows, grouped by workload, peer address and port. `role` picks the
 * client side (active: the port is the peer's) or the server side (passive: the port is ours).
 */
async function flows(
  ctx: QueryContext,
  filter: EventFilter,
  role: 'active' | 'passive',
  extra: (p: Params) => string[],
): Promise<FlowRow[]> {
  const p = new Params()
  const conditions = [
    ...filterConditions(filter, ctx.scope, p),
    ...extra(p),
    `role = '${role}'`,
    `NOT ${LOOPBACK}`,
  ]
  const port = role === 'active' ? 'dport' : 'sport'
  return ctx.runner.select<FlowRow>(
    `SELECT namespace AS f_namespace, ${WORKLOAD_KIND} AS f_kind, ${WORKLOAD_NAME} AS f_name,
       IPv6NumToString(daddr) AS peer, ${port} AS port,
       countIf(event IN ('connect', 'accept')) AS opened,
       countIf(event = 'connect_failed') AS failed,
       sumIf(bytes_sent, event = 'close') AS sent, sumIf(bytes_received, event = 'close') AS received,
       toString(min(time)) AS first_seen, toString(max(time)) AS last_seen
     FROM ebbflow.tcp_connections ${where(conditions)}
     GROUP BY f_namespace, f_kind, f_name, peer, port
     ORDER BY f_namespace, f_kind, f_name, peer, port`,
    p,
  )
}

export interface Peer {
  workload: Workload | undefined
  address: string
}

export async function flowsWithPeers(
  ctx: QueryContext,
  filter: EventFilter,
  role: 'active' | 'passive',
  book: Map<string, Workload>,
  extra: (p: Params) => string[] = () => [],
) {
  const rows = await flows(ctx, filter, role, extra)
  return rows.map((r) => {
    const address = showAddress(r.peer)
    return {
      self: {
        id: workloadId(r.f_namespace, r.f_kind, r.f_name),
        namespace: r.f_namespace,
        kind: r.f_kind,
        name: r.f_name,
      },
      peer: { workload: book.get(address), address } as Peer,
      port: num(r.port),
      opened: num(r.opened),
      failed: num(r.failed),
      sent: num(r.sent),
      received: num(r.received),
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
    }
  })
}

/**
 * Nodes are workloads (and external addresses); an edge is client → server on one port with
 * the connections opened and the bytes moved, seen from the client when the client is known,
 * else from the server.
 */
export async function serviceMap(ctx: QueryContext, filter: EventFilter) {
  const book = await addressBook(ctx, filter)
  const nodes = new Map<string, MapNode>()
  const edges = new Map<string, MapEdge>()
  const nodeOf = (w: { id: string; namespace: string; kind: string; name: string }) => {
    if (!nodes.has(w.id))
      nodes.set(w.id, {
        id: w.id,
        namespace: w.namespace || null,
        kind: w.kind,
        name: w.name,
        external: false,
        address: null,
      })
    return w.id
  }
  const nodeOfPeer = (peer: Peer) => {
    if (peer.workload) return nodeOf(peer.workload)
    const id = `external/${peer.address}`
    if (!nodes.has(id))
      nodes.set(id, {
        id,
        namespace: null,
        kind: 'External',
        name: peer.address,
        external: true,
        address: peer.address,
      })
    return id
  }
  const add = (source: string, target: string, f: Omit<MapEdge, 'source' | 'target'>) => {
    const key = `${source}\0${target}\0${f.port}`
    const e = edges.get(key)
    if (!e) edges.set(key, { source, target, ...f })
    else {
      e.connections += f.connections
      e.failedConnections += f.failedConnections
      e.bytesSent += f.bytesSent
      e.bytesReceived += f.bytesReceived
    }
  }
  for (const f of await flowsWithPeers(ctx, filter, 'active', book))
    add(nodeOf(f.self), nodeOfPeer(f.peer), {
      port: f.port,
      connections: f.opened,
      failedConnections: f.failed,
      bytesSent: f.sent,
      bytesReceived: f.received,
    })
  // The server's side of a connection counts only when its client's side is not in the map:
  // the client is outside the caller's view, or its side was not captured.
  for (const f of await flowsWithPeers(ctx, filter, 'passive', book)) {
    if (f.peer.workload && edges.has(`${f.peer.workload.id}\0${f.self.id}\0${f.port}`)) continue
    add(nodeOfPeer(f.peer), nodeOf(f.self), {
      port: f.port,
      connections: f.opened,
      failedConnections: f.failed,
      bytesSent: f.received,
      bytesReceived: f.sent,
    })
  }
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  return {
    nodes: [...nodes.values()].sort(byId),
    edges: [...edges.values()].sort((a, b) =>
      a.source !== b.source
        ? a.source < b.source
          ? -1
          : 1
        : a.target !== b.target
          ? a.target < b.target
            ? -1
            : 1
          : a.port - b.port,
    ),
  }
}

const STEP = /^(\d{1,6})(s|m|h|d)$/
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

export function parseStep(step: string): number {
  const m = STEP.exec(step)
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2]!]! : 0
  if (seconds < 1 || seconds > 31 * 86400)
    throw userError(
      'BAD_USER_INPUT',
      `step must be a duration such as 30s, 5m, 1h or 1d, between 1s and 31d (got ${JSON.stringify(step.slice(0, 32))})`,
    )
  return seconds
}

export async function trafficSeries(ctx: QueryContext, filter: EventFilter, step: string) {
  const seconds = parseStep(step)
  const p = new Params()
  const conditions = filterConditions(filter, ctx.scope, p)
  const max = ctx.limits.maxSeriesPoints
  const rows = await ctx.runner.select<{
    bucket: string
    in_bytes: string
    out_bytes: string
    in_packets: string
    out_packets: string
  }>(
    `SELECT toString(toStartOfInterval(time, toIntervalSecond(${p.add('UInt32', seconds)}))) AS bucket,
       sumIf(bytes, direction = 'ingress') AS in_bytes, sumIf(bytes, direction = 'egress') AS out_bytes,
       sumIf(packets, direction = 'ingress') AS in_packets,
       sumIf(packets, direction = 'egress') AS out_packets
     FROM ebbflow.traffic ${where(conditions)}
     GROUP BY bucket ORDER BY bucket LIMIT ${max + 1}`,
    p,
  )
  if (rows.length > max)
    throw userError(
      'RESULT_TOO_LARGE',
      `the series has more than ${max} points; use a larger step or a shorter window`,
    )
  return rows.map((r) => ({
    time: r.bucket.includes('.') ? r.bucket : `${r.bucket}.000000000`,
    ingressBytes: num(r.in_bytes),
    egressBytes: num(r.out_bytes),
    ingressPackets: num(r.in_packets),
    egressPackets: num(r.out_packets),
  }))
}
