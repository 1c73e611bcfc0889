// What every domain shares: the scalars, the event filter, the families, Relay's PageInfo and
// the Metadata type; and the resolvers of the pod columns, which store "unknown" as ''.
import { metadataTypeDefs, metaOf } from '../metadata.ts'
import type { Metadata, Resolvers } from '../resolvers-types.generated.ts'
import { DateTimeScalar, JsonScalar } from '../time.ts'

export const typeDefs = [
  /* GraphQL */ `
  "RFC 3339 time in UTC with up to nanosecond precision."
  scalar DateTime
  "A JSON document (a seccomp profile, a Kubernetes manifest, an event's fields)."
  scalar JSON

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

  type PageInfo {
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
    startCursor: String
    endCursor: String
  }
`,
  metadataTypeDefs,
]

export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,
  JSON: JsonScalar,
}

/** '' is how the store says "unknown"; GraphQL says null. */
export const orNull = (s: string) => (s === '' ? null : s)

interface PodColumns {
  namespace: string
  pod: string
  container: string
  function: string
}

/** The pod columns and the Metadata of a row that has them (exec and TCP rows). */
export const podFields = {
  namespace: (r: PodColumns) => orNull(r.namespace),
  pod: (r: PodColumns) => orNull(r.pod),
  container: (r: PodColumns) => orNull(r.container),
  function: (r: PodColumns) => orNull(r.function),
  // metaOf walks META_COLUMNS, the same list the Metadata SDL is printed from.
  meta: (r: PodColumns) => metaOf(r as unknown as Record<string, unknown>) as unknown as Metadata,
}
