// Process execs, their exits (through the request's DataLoader) and `kubectl exec` sessions.
import { execEvents, execSession, execSessions } from '../queries/exec.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'
import { orNull, podFields } from './common.ts'

export const typeDefs = /* GraphQL */ `
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
`

export const resolvers: Resolvers = {
  Query: {
    execEvents: (_, a, ctx) => execEvents(ctx, a.filter, a),
    execSessions: (_, a, ctx) => execSessions(ctx, a.filter, a),
    execSession: (_, a, ctx) => execSession(ctx, a.id),
  },
  ExecEvent: {
    ...podFields,
    time: (r) => r.ts,
    sessionId: (r) => orNull(r.session),
    durationFromFork: async (r, _, ctx) => (await ctx.exits.load(r))?.durationFromFork ?? null,
    coreDumped: async (r, _, ctx) => (await ctx.exits.load(r))?.coreDumped ?? null,
    exitCode: async (r, _, ctx) => (await ctx.exits.load(r))?.exitCode ?? null,
    signal: async (r, _, ctx) => (await ctx.exits.load(r))?.signal ?? null,
    durationNs: async (r, _, ctx) => (await ctx.exits.load(r))?.durationNs ?? null,
    exitTime: async (r, _, ctx) => (await ctx.exits.load(r))?.ts ?? null,
  },
  ExecSession: {
    node: (s) => s.sessionNode,
    namespace: (s) => orNull(s.sessionNamespace),
    pod: (s) => orNull(s.sessionPod),
    container: (s) => orNull(s.sessionContainer),
    uid: (s) => s.sessionUid,
    commands: async (s, _, ctx) =>
      (await ctx.sessionCommands.load(s.id)).slice(0, ctx.limits.maxSessionCommands),
    truncated: async (s, _, ctx) =>
      (await ctx.sessionCommands.load(s.id)).length > ctx.limits.maxSessionCommands,
    endedAt: async (s, _, ctx) => {
      const first = (await ctx.sessionCommands.load(s.id))[0]
      return first ? ((await ctx.exits.load(first))?.ts ?? null) : null
    },
    exitCode: async (s, _, ctx) => {
      const first = (await ctx.sessionCommands.load(s.id))[0]
      return first ? ((await ctx.exits.load(first))?.exitCode ?? null) : null
    },
  },
}
