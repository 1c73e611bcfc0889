// File accesses (the file family), one entry per path and access.
import { fileAccess } from '../queries/files.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "Files a workload touched (file family), one entry per path and access, most used first."
    fileAccess(filter: EventFilter!, first: Int): [FileAccessSummary!]!
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
`

export const resolvers: Resolvers = {
  Query: {
    fileAccess: (_, a, ctx) => fileAccess(ctx, a.filter, a.first),
  },
}
