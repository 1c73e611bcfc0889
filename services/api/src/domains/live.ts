// The live tail: the `events` subscription over whatever LiveSource the server was given.
import type { Family } from '@ebbflow/common'
import { userError } from '../errors.ts'
import { type LiveEvent, type LiveSource, livePayload, liveStream } from '../live.ts'
import type { Resolvers } from '../resolvers-types.generated.ts'
import { checkNamespace } from '../sql.ts'

export const typeDefs = /* GraphQL */ `
  type Subscription {
    "Events as they are captured (server-sent events)."
    events(filter: EventFilter!, families: [Family!]): LiveEvent!
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

export function resolvers(live: LiveSource | undefined): Resolvers {
  return {
    Subscription: {
      events: {
        subscribe: (_, a, ctx) => {
          if (!live) throw userError('UNAVAILABLE', 'live events are not enabled on this server')
          checkNamespace(ctx.scope, a.filter.namespace)
          const families = a.families?.map((f) => f.toLowerCase() as Family)
          return liveStream(live, a.filter, ctx.scope, families)
        },
        resolve: (event: LiveEvent) => livePayload(event),
      },
    },
  }
}
