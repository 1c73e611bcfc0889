// System calls: counts and series per workload.
import { syscallCounts, syscallSeries } from '../queries/syscalls.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "System calls by count, most frequent first."
    syscallCounts(filter: EventFilter!, first: Int): [SyscallCount!]!
    "System calls per step (default 1m) and syscall, for the workloads the filter selects."
    syscallSeries(filter: EventFilter!, step: String): [SyscallPoint!]!
  }

  type SyscallCount {
    syscall: String!
    nr: Int!
    count: Float!
  }

  type SyscallPoint {
    "Start of the step."
    time: DateTime!
    syscall: String!
    count: Float!
  }
`

export const resolvers: Resolvers = {
  Query: {
    syscallCounts: (_, a, ctx) => syscallCounts(ctx, a.filter, a.first),
    syscallSeries: (_, a, ctx) => syscallSeries(ctx, a.filter, a.step ?? '1m'),
  },
}
