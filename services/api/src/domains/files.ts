// File accesses (the file family), one entry per path and access.
import { fileAccess } from '../queries/files.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    """
    Files a workload touched (file family), one entry per path and access, most used first
    (then by path and access), in pages. Totals are sums over the filter's window: with
    accesses still arriving a later page may repeat or skip an entry whose total moved; a
    fixed "to" keeps the listing stable.
    """
    fileAccess(
      filter: EventFilter!
      first: Int
      after: String
      last: Int
      before: String
    ): FileAccessConnection!
  }

  type FileAccessEdge {
    node: FileAccessSummary!
    cursor: String!
  }

  type FileAccessConnection {
    edges: [FileAccessEdge!]!
    pageInfo: PageInfo!
  }

  type FileAccessSummary {
    path: String!
    "read, write, exec, create, remove or truncate."
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
`

export const resolvers: Resolvers = {
  Query: {
    fileAccess: (_, a, ctx) => fileAccess(ctx, a.filter, a),
  },
}
