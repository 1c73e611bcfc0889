// The GraphQL schema, composed from one `{ typeDefs, resolvers }` module per domain (domains/).
// Resolvers only translate arguments and rows; the SQL lives in queries/, and every statement
// there carries the caller's namespace restriction. Resolver types are generated from this SDL
// (npm run gen:graphql → resolvers-types.generated.ts).
import { createSchema } from 'graphql-yoga'
import type { ApiContext } from './context.ts'
import * as alerts from './domains/alerts.ts'
import * as common from './domains/common.ts'
import * as files from './domains/files.ts'
import * as health from './domains/health.ts'
import * as live from './domains/live.ts'
import * as network from './domains/network.ts'
import * as policy from './domains/policy.ts'
import * as processes from './domains/processes.ts'
import * as syscalls from './domains/syscalls.ts'
import type { LiveSource } from './live.ts'
import type { Resolvers } from './resolvers-types.generated.ts'

const DOMAINS = [common, processes, network, syscalls, files, policy, health, alerts]

/** Every domain's SDL, in one list (the code generator reads the same). */
export const typeDefs: string[] = [...DOMAINS, live].flatMap((d) => d.typeDefs)

export function buildSchema(liveSource?: LiveSource) {
  const resolvers: Resolvers[] = [...DOMAINS.map((d) => d.resolvers), live.resolvers(liveSource)]
  return createSchema<ApiContext>({
    typeDefs,
    resolvers: resolvers as Parameters<typeof createSchema<ApiContext>>[0]['resolvers'],
  })
}
