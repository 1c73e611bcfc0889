// TCP connection events, the service map between workloads, and traffic over time.
import { connections, serviceMap, trafficSeries } from '../queries/network.ts'
import type { Resolvers, TcpEventKind } from '../resolvers-types.generated.ts'
import { orNull, podFields } from './common.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "TCP connection events, oldest first."
    connections(
      filter: EventFilter!
      events: [TcpEventKind!]
      first: Int
      after: String
      last: Int
      before: String
    ): TcpConnectionPage!
    "Workloads and the connections and bytes between them."
    serviceMap(filter: EventFilter!): ServiceMap!
    "Traffic bytes and packets per step (30s, 5m, 1h, 1d; default 1m)."
    trafficSeries(filter: EventFilter!, step: String): [TrafficPoint!]!
  }

  enum TcpEventKind {
    connect
    accept
    close
    connect_failed
  }

  type TcpConnection {
    time: DateTime!
    event: TcpEventKind!
    "active: this side connected; passive: it accepted."
    role: String!
    node: String!
    namespace: String
    pod: String
    container: String
    function: String
    workloadKind: String
    workloadName: String
    sockId: String!
    pid: Int!
    comm: String!
    sourceAddress: String!
    sourcePort: Int!
    destinationAddress: String!
    destinationPort: Int!
    bytesSent: Float!
    bytesReceived: Float!
    durationNs: Float!
    "cgroup v2 id of the socket's (or, passive, the acceptor's) cgroup, as a decimal string."
    cgroupId: String!
    netnsIno: Float!
    "4 or 6."
    ipVersion: Int!
    meta: Metadata!
  }

  type TcpConnectionEdge {
    node: TcpConnection!
    cursor: String!
  }

  "A page of TCP connection events (a Relay connection)."
  type TcpConnectionPage {
    edges: [TcpConnectionEdge!]!
    pageInfo: PageInfo!
  }

  type ServiceMap {
    nodes: [ServiceNode!]!
    edges: [ServiceEdge!]!
  }

  type ServiceNode {
    "namespace/kind/name, or external/address."
    id: ID!
    namespace: String
    "Deployment, StatefulSet… Pod (no controller), Host, External."
    kind: String!
    name: String!
    external: Boolean!
    address: String
  }

  type ServiceEdge {
    "The client."
    source: ID!
    "The server."
    target: ID!
    port: Int!
    connections: Int!
    failedConnections: Int!
    "Bytes the client sent."
    bytesSent: Float!
    "Bytes the client received."
    bytesReceived: Float!
  }

  type TrafficPoint {
    time: DateTime!
    ingressBytes: Float!
    egressBytes: Float!
    ingressPackets: Float!
    egressPackets: Float!
  }
`

export const resolvers: Resolvers = {
  Query: {
    connections: (_, a, ctx) => connections(ctx, a.filter, a.events, a),
    serviceMap: (_, a, ctx) => serviceMap(ctx, a.filter),
    trafficSeries: (_, a, ctx) => trafficSeries(ctx, a.filter, a.step ?? '1m'),
  },
  TcpConnection: {
    ...podFields,
    time: (r) => r.ts,
    event: (r) => r.ev as TcpEventKind,
    role: (r) => r.rl,
    workloadKind: (r) => orNull(r.workloadKind),
    workloadName: (r) => orNull(r.workloadName),
  },
}
