// The collectors' health and the batch ledger's accounting (callers that may read every
// namespace only: collector statistics describe nodes, not namespaces).
import { collectorHealth } from '../queries/health.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "Drops and last report per collector node (callers that may read every namespace only)."
    collectorHealth(node: String): [CollectorHealth!]!
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
`

export const resolvers: Resolvers = {
  Query: {
    collectorHealth: (_, a, ctx) => collectorHealth(ctx, a.node),
  },
}
