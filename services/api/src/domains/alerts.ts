// The alerter's state (migration 0004): current alert instances, their transitions, and each
// rule's last evaluation.
import { alertHistory, alertRules, alerts } from '../queries/alerts.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'

export const typeDefs = /* GraphQL */ `
  type Query {
    "Alert instances: pending, firing, or resolved within the last 15 minutes (still re-sent)."
    alerts(namespace: String, rule: String, state: AlertState): [Alert!]!
    "Alert transitions (inactive → pending → firing → resolved), newest first."
    alertHistory(
      namespace: String
      rule: String
      from: DateTime
      to: DateTime
      first: Int
    ): [AlertTransition!]!
    "Each rule's last evaluation and health (callers that may read every namespace only)."
    alertRules: [AlertRuleHealth!]!
  }

  enum AlertState {
    pending
    firing
    resolved
  }

  type Alert {
    rule: String!
    fingerprint: ID!
    state: AlertState!
    "Empty for node-level alerts."
    namespace: String!
    labels: JSON!
    annotations: JSON!
    value: Float!
    activeAt: DateTime!
    firedAt: DateTime
    resolvedAt: DateTime
    "When it was last sent to Alertmanager."
    lastSentAt: DateTime
  }

  type AlertTransition {
    id: ID!
    time: DateTime!
    rule: String!
    fingerprint: String!
    namespace: String!
    "inactive, pending, firing or resolved."
    from: String!
    to: String!
    labels: JSON!
    annotations: JSON!
    value: Float!
  }

  type AlertRuleHealth {
    rule: String!
    "ok (rows), nodata (no rows) or error (the query failed; the rule's alerts keep their state)."
    health: String!
    error: String
    lastEvaluation: DateTime!
    windowStart: DateTime!
    windowEnd: DateTime!
    instances: Int!
  }
`

export const resolvers: Resolvers = {
  Query: {
    alerts: (_, a, ctx) => alerts(ctx, a),
    alertHistory: (_, a, ctx) => alertHistory(ctx, a),
    alertRules: (_, _a, ctx) => alertRules(ctx),
  },
}
