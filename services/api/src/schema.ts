// The GraphQL schema: SDL and resolvers. Resolvers only translate arguments and rows; the SQL
// lives in queries/, and every statement there carries the caller's namespace restriction.
import type { Family } from '@ebbflow/common'
import { createSchema } from 'graphql-yoga'
import type { ApiContext } from './context.ts'
import { userError } from './errors.ts'
import { type LiveSource, liveMatches, livePayload } from './live.ts'
import { metadataTypeDefs, metaOf } from './metadata.ts'
import { alertQueryResolvers, alertTypeDefs } from './queries/alerts.ts'
import {
  type ExecRow,
  execEvents,
  execSession,
  execSessions,
  type SessionRow,
} from './queries/exec.ts'
import { fileAccess, landlockRuleset } from './queries/files.ts'
import { collectorHealth } from './queries/health.ts'
import { type ConnectionRow, connections, serviceMap, trafficSeries } from './queries/network.ts'
import { networkPolicy } from './queries/policy.ts'
import { seccompProfile, syscallCounts, syscallSeries } from './queries/syscalls.ts'
import { checkNamespace, type EventFilter, num } from './sql.ts'
import { DateTimeScalar, JsonScalar } from './time.ts'

export const typeDefs = /* GraphQL */ `
  "RFC 3339 time in UTC with up to nanosecond precision."
  scalar DateTime
  "A JSON document (a seccomp profile, a Kubernetes manifest, an event's fields)."
  scalar JSON

  type Query {
    "Process execs, oldest first; exitCode and durationNs come from the process's exit."
    execEvents(
      filter: EventFilter!
      first: Int
      after: String
      last: Int
      before: String
    ): ExecEventConnection!
    "kubectl exec sessions (execs sharing a session), by their first command."
    execSessions(
      filter: EventFilter!
      first: Int
      after: String
      last: Int
      before: String
    ): ExecSessionConnection!
    "One session and its commands, in order, for playback."
    execSession(id: ID!): ExecSession
    "TCP connection events, oldest first."
    connections(
      filter: EventFilter!
      events: [TcpEventKind!]
      first: Int
      after: String
      last: Int
      before: String
    ): ConnectionConnection!
    "Workloads and the connections and bytes between them."
    serviceMap(filter: EventFilter!): ServiceMap!
    "Traffic bytes and packets per step (30s, 5m, 1h, 1d; default 1m)."
    trafficSeries(filter: EventFilter!, step: String): [TrafficPoint!]!
    "System calls by count, most frequent first."
    syscallCounts(filter: EventFilter!, first: Int): [SyscallCount!]!
    "System calls per step (default 1m) and syscall, for the workloads the filter selects."
    syscallSeries(filter: EventFilter!, step: String): [SyscallPoint!]!
    "A seccomp profile allowing the syscalls a workload (all its replicas) made in the window."
    seccompProfile(
      namespace: String!
      pod: String
      container: String
      from: DateTime
      to: DateTime
      "Also allow the container runtime's start-up syscalls."
      includeRuntime: Boolean = false
    ): SeccompProfile!
    "A NetworkPolicy admitting exactly the TCP peers and ports seen in the window."
    networkPolicy(namespace: String!, pod: String, from: DateTime, to: DateTime): NetworkPolicyAdvice!
    "Drops and last report per collector node (callers that may read every namespace only)."
    collectorHealth(node: String): [CollectorHealth!]!
    "Files a workload touched (file family), one entry per path and access, most used first."
    fileAccess(filter: EventFilter!, first: Int): [FileAccessSummary!]!
    "A Landlock ruleset covering the files a workload (all its replicas) or function touched."
    landlockRuleset(
      namespace: String!
      pod: String
      function: String
      container: String
      from: DateTime
      to: DateTime
      "Also allow what the container runtime touched while starting it."
      includeRuntime: Boolean = false
    ): LandlockAdvice!
  }

  type Subscription {
    "Events as they are captured (server-sent events)."
    events(filter: EventFilter!, families: [Family!]): LiveEvent!
  }

  input EventFilter {
    "Inclusive."
    from: DateTime
    "Exclusive."
    to: DateTime
    namespace: String
    pod: String
    container: String
    function: String
    node: String
    "Every match must hold."
    labels: [LabelMatch!]
  }

  "A pod label; without a value the label only has to be present."
  input LabelMatch {
    key: String!
    value: String
  }

  enum Family {
    EXEC
    NET
    SYSCALL
    FILE
  }

  type FileAccessSummary {
    path: String!
    "read, write, exec, create or remove."
    access: String!
    directory: Boolean!
    "Accesses counted (repeats deduplicated in the kernel included)."
    count: Float!
    firstSeen: DateTime!
    lastSeen: DateTime!
    "Commands (comm) of the processes recorded for it."
    processes: [String!]!
    pids: [Int!]!
    pods: [String!]!
    containers: [String!]!
  }

  type LandlockRule {
    path: String!
    "A directory rule covers the hierarchy beneath it."
    directory: Boolean!
    "LANDLOCK_ACCESS_FS_* names without the prefix."
    allowedAccess: [String!]!
    allowedAccessMask: Int!
    "Observed paths the rule covers."
    covers: [String!]!
  }

  type LandlockAdvice {
    namespace: String!
    workloadKind: String
    workloadName: String
    function: String
    pods: [String!]!
    from: DateTime
    to: DateTime
    observed: Boolean!
    accesses: [FileAccessSummary!]!
    "Accesses of the container runtime's start-up, left out unless includeRuntime."
    runtimeAccesses: [FileAccessSummary!]!
    rules: [LandlockRule!]!
    "What a launcher applies: { abi, handledAccessFs, handledAccessFsMask, rules }."
    ruleset: JSON!
    summary: String!
  }

  enum TcpEventKind {
    connect
    accept
    close
    connect_failed
  }

  type PageInfo {
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
    startCursor: String
    endCursor: String
  }

  type ExecEvent {
    time: DateTime!
    node: String!
    namespace: String
    pod: String
    container: String
    function: String
    pid: Int!
    tgid: Int!
    ppid: Int!
    uid: Int!
    comm: String!
    filename: String!
    args: [String!]!
    exitCode: Int
    "The signal that ended the process (0 for a normal exit)."
    signal: Int
    durationNs: Float
    exitTime: DateTime
    "The exit's duration was measured from fork (the exec was not seen)."
    durationFromFork: Boolean
    coreDumped: Boolean
    sessionId: ID
    gid: Int!
    "cgroup v2 id (u64, as a decimal string)."
    cgroupId: String!
    pidnsIno: Float!
    mntnsIno: Float!
    parentComm: String!
    "argv bytes the process had; more than were kept when argsTruncated."
    argsTotalBytes: Int!
    argsTruncated: Boolean!
    filenameTruncated: Boolean!
    argsReadFailed: Boolean!
    "Read from /proc when the collector started, not captured at exec."
    seenAtStart: Boolean!
    meta: Metadata!
  }

  type ExecEventEdge {
    node: ExecEvent!
    cursor: String!
  }

  type ExecEventConnection {
    edges: [ExecEventEdge!]!
    pageInfo: PageInfo!
  }

  type ExecSession {
    id: ID!
    node: String!
    namespace: String
    pod: String
    container: String
    uid: Int!
    startedAt: DateTime!
    lastCommandAt: DateTime!
    "The exit of the session's first process: the session's end."
    endedAt: DateTime
    exitCode: Int
    commandCount: Int!
    "The commands in the order they ran (at most the server's limit; see truncated)."
    commands: [ExecEvent!]!
    truncated: Boolean!
  }

  type ExecSessionEdge {
    node: ExecSession!
    cursor: String!
  }

  type ExecSessionConnection {
    edges: [ExecSessionEdge!]!
    pageInfo: PageInfo!
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

  type ConnectionEdge {
    node: TcpConnection!
    cursor: String!
  }

  type ConnectionConnection {
    edges: [ConnectionEdge!]!
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

  type SyscallPoint {
    "Start of the step."
    time: DateTime!
    syscall: String!
    count: Float!
  }

  type TrafficPoint {
    time: DateTime!
    ingressBytes: Float!
    egressBytes: Float!
    ingressPackets: Float!
    egressPackets: Float!
  }

  type SyscallCount {
    syscall: String!
    nr: Int!
    count: Float!
  }

  type SyscallEvidence {
    name: String!
    nr: Int!
    count: Float!
    pods: [String!]!
    containers: [String!]!
  }

  type SeccompProfile {
    namespace: String!
    workloadKind: String
    workloadName: String
    "Every replica the profile was built from."
    pods: [String!]!
    container: String
    from: DateTime
    to: DateTime
    "False when no syscalls were seen: the profile would deny everything."
    observed: Boolean!
    defaultAction: String!
    architectures: [String!]!
    syscalls: [SyscallEvidence!]!
    "The container runtime's start-up syscalls, kept apart from the workload's."
    runtimeSyscalls: [SyscallEvidence!]!
    "OCI runtime-spec seccomp JSON."
    ociProfile: JSON!
    "Security Profiles Operator SeccompProfile."
    manifest: JSON!
  }

  type PolicyPeer {
    "Pod (selected by labels) or External (an address)."
    kind: String!
    namespace: String
    workload: String
    address: String
    labels: JSON
  }

  type FlowEvidence {
    port: Int!
    connections: Int!
    bytesSent: Float!
    bytesReceived: Float!
    firstSeen: DateTime!
    lastSeen: DateTime!
  }

  type PolicyRule {
    peer: PolicyPeer!
    ports: [Int!]!
    "The NetworkPolicyPeer of the rule."
    peerSpec: JSON!
    evidence: [FlowEvidence!]!
  }

  type NetworkPolicyAdvice {
    namespace: String!
    workloadKind: String
    workloadName: String
    podSelector: JSON!
    ingress: [PolicyRule!]!
    egress: [PolicyRule!]!
    "networking.k8s.io/v1 NetworkPolicy."
    manifest: JSON!
    warnings: [String!]!
  }

  type DropCount {
    family: String!
    reason: String!
    count: Float!
  }

  type CollectorHealth {
    node: String!
    lastSeen: DateTime!
    totalDrops: Float!
    drops: [DropCount!]!
    "Per family: how far behind its newest event the ingester took the node's latest batch."
    ingestLag: [IngestLag!]!
    "Events in the batches stored over the last 60 s, per second."
    eventsPerSecond: Float!
    "Batches missing from the node's collectors' sequences (sum over collectors)."
    gapBatches: Float!
    "Batches the node's publishers reported dropping (queue_full)."
    droppedBatches: Float!
    "gapBatches − droppedBatches: batches lost without being counted. Zero when nothing is lost silently."
    unaccounted: Float!
    "Per collector instance (one per collector process) and topic, from the batch ledger."
    collectors: [CollectorAccounting!]!
  }

  "One collector instance's batches on one topic: sequence numbers stored, missing and reported dropped."
  type CollectorAccounting {
    instanceId: String!
    bootId: String!
    family: String!
    topic: String!
    firstStored: DateTime!
    lastStored: DateTime!
    "Sequence numbers 0 to the highest stored: what the instance published, at least."
    batches: Float!
    storedBatches: Float!
    storedEvents: Float!
    "Sequence numbers never stored."
    gapBatches: Float!
    "Batches the publisher reported dropping past its memory budget, and their events."
    droppedBatches: Float!
    droppedEvents: Float!
    "gapBatches − droppedBatches: must be zero."
    unaccounted: Float!
    "The missing sequence ranges (inclusive), the first 100."
    gaps: [SequenceRange!]!
  }

  type SequenceRange {
    from: Float!
    to: Float!
  }

  type IngestLag {
    family: String!
    latestMs: Float!
  }

  type LiveEvent {
    family: Family!
    kind: String!
    time: DateTime
    node: String
    namespace: String
    pod: String
    container: String
    function: String
    data: JSON!
  }
`

interface PageArgs {
  first?: number | null
  after?: string | null
  last?: number | null
  before?: string | null
}

const orNull = (s: string) => (s === '' ? null : s)

export function buildSchema(live?: LiveSource) {
  return createSchema<ApiContext>({
    typeDefs: [typeDefs, metadataTypeDefs, alertTypeDefs],
    resolvers: {
      DateTime: DateTimeScalar,
      JSON: JsonScalar,
      Query: {
        execEvents: (_: unknown, a: { filter: EventFilter } & PageArgs, ctx: ApiContext) =>
          execEvents(ctx, a.filter, a),
        execSessions: (_: unknown, a: { filter: EventFilter } & PageArgs, ctx: ApiContext) =>
          execSessions(ctx, a.filter, a),
        execSession: (_: unknown, a: { id: string }, ctx: ApiContext) => execSession(ctx, a.id),
        connections: (
          _: unknown,
          a: { filter: EventFilter; events?: string[] | null } & PageArgs,
          ctx: ApiContext,
        ) => connections(ctx, a.filter, a.events, a),
        serviceMap: (_: unknown, a: { filter: EventFilter }, ctx: ApiContext) =>
          serviceMap(ctx, a.filter),
        trafficSeries: (
          _: unknown,
          a: { filter: EventFilter; step?: string | null },
          ctx: ApiContext,
        ) => trafficSeries(ctx, a.filter, a.step ?? '1m'),
        syscallCounts: (
          _: unknown,
          a: { filter: EventFilter; first?: number | null },
          ctx: ApiContext,
        ) => syscallCounts(ctx, a.filter, a.first),
        syscallSeries: (
          _: unknown,
          a: { filter: EventFilter; step?: string | null },
          ctx: ApiContext,
        ) => syscallSeries(ctx, a.filter, a.step ?? '1m'),
        seccompProfile: (_: unknown, a: Parameters<typeof seccompProfile>[1], ctx: ApiContext) =>
          seccompProfile(ctx, a),
        networkPolicy: (_: unknown, a: Parameters<typeof networkPolicy>[1], ctx: ApiContext) =>
          networkPolicy(ctx, a),
        collectorHealth: (_: unknown, a: { node?: string | null }, ctx: ApiContext) =>
          collectorHealth(ctx, a.node),
        fileAccess: (
          _: unknown,
          a: { filter: EventFilter; first?: number | null },
          ctx: ApiContext,
        ) => fileAccess(ctx, a.filter, a.first),
        landlockRuleset: (_: unknown, a: Parameters<typeof landlockRuleset>[1], ctx: ApiContext) =>
          landlockRuleset(ctx, a),
        ...alertQueryResolvers,
      },
      Subscription: {
        events: {
          subscribe: (
            _: unknown,
            a: { filter: EventFilter; families?: string[] | null },
            ctx: ApiContext,
          ) => {
            const families = a.families?.map((f) => f.toLowerCase() as Family)
            return liveStream(live, a.filter, ctx, families)
          },
          resolve: (payload: unknown) => payload,
        },
      },
      ExecEvent: {
        time: (r: ExecRow) => r.ts,
        namespace: (r: ExecRow) => orNull(r.namespace),
        pod: (r: ExecRow) => orNull(r.pod),
        container: (r: ExecRow) => orNull(r.container),
        function: (r: ExecRow) => orNull(r.function),
        pid: (r: ExecRow) => num(r.pid),
        tgid: (r: ExecRow) => num(r.tgid),
        ppid: (r: ExecRow) => num(r.ppid),
        uid: (r: ExecRow) => num(r.uid),
        sessionId: (r: ExecRow) => orNull(r.session),
        gid: (r: ExecRow) => num(r.gid),
        cgroupId: (r: ExecRow) => String(r.cgroup_id),
        pidnsIno: (r: ExecRow) => num(r.pidns_ino),
        mntnsIno: (r: ExecRow) => num(r.mntns_ino),
        parentComm: (r: ExecRow) => r.parent_comm,
        argsTotalBytes: (r: ExecRow) => num(r.args_total_bytes),
        argsTruncated: (r: ExecRow) => r.args_truncated,
        filenameTruncated: (r: ExecRow) => r.filename_truncated,
        argsReadFailed: (r: ExecRow) => r.args_read_failed,
        seenAtStart: (r: ExecRow) => r.seen_at_start,
        meta: (r: ExecRow) => metaOf(r as unknown as Record<string, unknown>),
        durationFromFork: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.durationFromFork ?? null,
        coreDumped: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.coreDumped ?? null,
        exitCode: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.exitCode ?? null,
        signal: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.signal ?? null,
        durationNs: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.durationNs ?? null,
        exitTime: async (r: ExecRow, _: unknown, ctx: ApiContext) =>
          (await ctx.exits.load(r))?.ts ?? null,
      },
      ExecSession: {
        node: (s: SessionRow) => s.s_node,
        namespace: (s: SessionRow) => orNull(s.s_namespace),
        pod: (s: SessionRow) => orNull(s.s_pod),
        container: (s: SessionRow) => orNull(s.s_container),
        uid: (s: SessionRow) => num(s.s_uid),
        startedAt: (s: SessionRow) => s.started,
        lastCommandAt: (s: SessionRow) => s.last_command,
        commandCount: (s: SessionRow) => num(s.commands),
        commands: async (s: SessionRow, _: unknown, ctx: ApiContext) =>
          (await ctx.sessionCommands.load(s.id)).slice(0, ctx.limits.maxSessionCommands),
        truncated: async (s: SessionRow, _: unknown, ctx: ApiContext) =>
          (await ctx.sessionCommands.load(s.id)).length > ctx.limits.maxSessionCommands,
        endedAt: async (s: SessionRow, _: unknown, ctx: ApiContext) => {
          const first = (await ctx.sessionCommands.load(s.id))[0]
          return first ? ((await ctx.exits.load(first))?.ts ?? null) : null
        },
        exitCode: async (s: SessionRow, _: unknown, ctx: ApiContext) => {
          const first = (await ctx.sessionCommands.load(s.id))[0]
          return first ? ((await ctx.exits.load(first))?.exitCode ?? null) : null
        },
      },
      TcpConnection: {
        time: (r: ConnectionRow) => r.ts,
        event: (r: ConnectionRow) => r.ev,
        role: (r: ConnectionRow) => r.rl,
        namespace: (r: ConnectionRow) => orNull(r.namespace),
        pod: (r: ConnectionRow) => orNull(r.pod),
        container: (r: ConnectionRow) => orNull(r.container),
        function: (r: ConnectionRow) => orNull(r.function),
        workloadKind: (r: ConnectionRow) => orNull(r.workload_kind),
        workloadName: (r: ConnectionRow) => orNull(r.workload_name),
        sockId: (r: ConnectionRow) => String(r.sock_id),
        pid: (r: ConnectionRow) => num(r.pid),
        sourceAddress: (r: ConnectionRow) => r.src,
        sourcePort: (r: ConnectionRow) => num(r.sport),
        destinationAddress: (r: ConnectionRow) => r.dst,
        destinationPort: (r: ConnectionRow) => num(r.dport),
        bytesSent: (r: ConnectionRow) => num(r.bytes_sent),
        bytesReceived: (r: ConnectionRow) => num(r.bytes_received),
        durationNs: (r: ConnectionRow) => num(r.duration_ns),
        cgroupId: (r: ConnectionRow) => String(r.cgroup_id),
        netnsIno: (r: ConnectionRow) => num(r.netns_ino),
        ipVersion: (r: ConnectionRow) => num(r.ip_family),
        meta: (r: ConnectionRow) => metaOf(r as unknown as Record<string, unknown>),
      },
    },
  })
}

/**
 * Live events that pass the filter and the caller's namespaces. An iterator rather than an
 * async generator: a generator waiting for the next event cannot be returned until one comes,
 * and a quiet stream would keep a gone subscriber registered.
 */
function liveStream(
  live: LiveSource | undefined,
  filter: EventFilter,
  ctx: ApiContext,
  families: Family[] | undefined,
): AsyncIterableIterator<ReturnType<typeof livePayload>> {
  if (!live) throw userError('UNAVAILABLE', 'live events are not enabled on this server')
  checkNamespace(ctx.scope, filter?.namespace)
  const source = live.subscribe()[Symbol.asyncIterator]()
  const stream: AsyncIterableIterator<ReturnType<typeof livePayload>> = {
    [Symbol.asyncIterator]: () => stream,
    async next() {
      for (;;) {
        const r = await source.next()
        if (r.done) return { done: true, value: undefined }
        if (liveMatches(r.value, filter, ctx.scope, families))
          return { done: false, value: livePayload(r.value) }
      }
    },
    async return() {
      await source.return?.()
      return { done: true, value: undefined }
    },
  }
  return stream
}
