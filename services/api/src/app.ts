// Builds the API (a graphql-yoga instance, itself a Node request handler); server.ts listens.
import { createHash } from 'node:crypto'
import { createLogger, type Logger } from '@ebbflow/common'
import type { Store } from '@ebbflow/store'
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor'
import { GraphQLError, type GraphQLSchema, NoSchemaIntrospectionCustomRule } from 'graphql'
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import { clickHouseHttpPlugin } from './clickhouse-http.ts'
import { type ApiContext, type ApiLimits, createContext } from './context.ts'
import { userError } from './errors.ts'
import { requestGuard } from './guard.ts'
import type { LiveSource } from './live.ts'
import { buildSchema } from './schema.ts'
import { type QueryLimits, QueryRunner, type Scope } from './sql.ts'

export interface Limits extends ApiLimits, QueryLimits {
  maxDepth: number
  maxAliases: number
  maxCost: number
  maxTokens: number
}

/** The defaults config.ts documents; tests and embedders override what they need. */
export const DEFAULT_LIMITS: Limits = {
  defaultPageSize: 50,
  maxPageSize: 500,
  maxSessionCommands: 10_000,
  maxSeriesPoints: 10_000,
  maxExecutionSeconds: 10,
  maxResultRows: 100_000,
  maxMemoryBytes: 1024 * 1024 * 1024,
  maxDepth: 10,
  maxAliases: 10,
  // graphql-armor multiplies a field's cost by a literal `first`: a full page of 500 execs
  // with every field costs about 30 000.
  maxCost: 100_000,
  maxTokens: 2000,
}

export interface ApiOptions {
  store: Store
  /** Bearer token → namespaces it may read; `*` among them means every namespace. */
  tokens: Readonly<Record<string, readonly string[]>>
  /** No token needed; every caller reads every namespace. For a laptop, never a cluster. */
  open?: boolean
  limits?: Partial<Limits>
  live?: LiveSource
  graphiql?: boolean
  introspection?: boolean
  /**
   * Origins besides the API's own that a browser may call it from (CORS, with credentials).
   * Default: none — same-origin only.
   */
  corsOrigins?: readonly string[]
  logger?: Logger
}

export type Api = YogaServerInstance<Record<string, unknown>, ApiContext>

const BEARER = /^Bearer\s+(\S+)\s*$/i

/**
 * Tokens are looked up by their SHA-256, not their text: a map lookup compares keys with
 * early exit, and how long it takes must not tell a caller how much of a token was right.
 */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Who the caller is allowed to read, from the Authorization header. */
export function authenticate(
  header: string | null,
  tokens: ReadonlyMap<string, readonly string[]>,
  open: boolean,
): Scope {
  const token = header === null ? undefined : BEARER.exec(header)?.[1]
  if (token !== undefined) {
    const namespaces = tokens.get(tokenKey(token))
    if (namespaces !== undefined)
      return namespaces.includes('*')
        ? { all: true, namespaces: [] }
        : { all: false, namespaces: [...namespaces] }
    // A wrong token is refused even on an open server: it is a mistake worth telling.
    throw userError('UNAUTHENTICATED', 'unknown bearer token', 401)
  }
  if (open) return { all: true, namespaces: [] }
  throw userError('UNAUTHENTICATED', 'a bearer token is required (Authorization: Bearer …)', 401)
}

/** graphql-armor's refusals, with the limit in the message and a code like our own errors. */
const refused = {
  exposeLimits: true,
  onReject: [
    (_ctx: unknown, err: GraphQLError) => {
      ;(err.extensions as Record<string, unknown>).code = 'QUERY_TOO_COMPLEX'
      // graphql-armor words its refusals as parse errors; the query's syntax was fine.
      err.message = err.message.replace(/^Syntax Error: /, '')
    },
  ],
}

const disableIntrospection: Plugin = {
  onValidate({ addValidationRule }) {
    addValidationRule(NoSchemaIntrospectionCustomRule)
  },
}

export function createApi(options: ApiOptions): Api {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits }
  const logger = options.logger ?? createLogger('api')
  const runner = new QueryRunner(options.store, limits, { logger })
  const tokens = new Map(Object.entries(options.tokens).map(([t, ns]) => [tokenKey(t), ns]))
  const open = options.open === true
  const corsOrigins = options.corsOrigins ?? []
  const plugins: Plugin[] = [
    requestGuard({ corsOrigins }),
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, flattenFragments: true, ...refused },
      maxAliases: { n: limits.maxAliases, ...refused },
      costLimit: { maxCost: limits.maxCost, ...refused },
      maxTokens: { n: limits.maxTokens, ...refused },
      maxDirectives: { n: 20, ...refused },
      blockFieldSuggestion: { enabled: !options.introspection },
    }) as Plugin,
  ]
  if (!options.introspection) plugins.push(disableIntrospection)
  // The embedded store's ClickHouse HTTP interface at /clickhouse (clickhouse-http.ts).
  if (options.store.queryRaw)
    plugins.push(
      clickHouseHttpPlugin({
        store: options.store,
        limits,
        logger,
        authenticate: (token) =>
          authenticate(token === null ? null : `Bearer ${token}`, tokens, open),
      }),
    )
  return createYoga<Record<string, unknown>, ApiContext>({
    schema: buildSchema(options.live) as unknown as GraphQLSchema,
    graphqlEndpoint: '/graphql',
    graphiql: options.graphiql === true,
    landingPage: false,
    // Batching would multiply every limit by the batch size.
    batching: false,
    logging: false,
    // yoga's default reflects any Origin with credentials: any page could read the API.
    cors: (request) => {
      const origin = request.headers.get('origin')
      return origin !== null && corsOrigins.includes(origin) ? { origin, credentials: true } : false
    },
    plugins,
    context: ({ request }) =>
      createContext(
        authenticate(request.headers.get('authorization'), tokens, open),
        runner,
        limits,
        logger,
      ),
    maskedErrors: {
      maskError(error: unknown) {
        if (error instanceof GraphQLError) {
          const original = error.originalError
          if (original === undefined || original === null || original instanceof GraphQLError)
            return error
          logger.error({ err: original, path: error.path }, 'resolver failed')
        } else logger.error({ err: error }, 'request failed')
        return new GraphQLError('internal error (the server log has the details)', {
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        })
      },
    },
  }) as Api
}
