// What every resolver of one request gets: the query context, and the request's DataLoaders
// (so nested fields batch instead of querying per row).
import DataLoader from 'dataloader'
import { type ExecRow, type ExitInfo, loadExits, loadSessionCommands } from './queries/exec.ts'
import type { ApiLimits, QueryContext } from './query-context.ts'

export type { ApiLimits, QueryContext } from './query-context.ts'

export interface ApiContext extends QueryContext {
  exits: DataLoader<ExecRow, ExitInfo | null, string>
  sessionCommands: DataLoader<string, ExecRow[]>
}

export function createContext(
  scope: QueryContext['scope'],
  runner: QueryContext['runner'],
  limits: ApiLimits,
  logger: QueryContext['logger'],
): ApiContext {
  const base: QueryContext = { scope, runner, limits, logger }
  return {
    ...base,
    exits: new DataLoader((rows) => loadExits(base, rows), {
      cacheKeyFn: (r) => `${r.node}\0${r.bootId}\0${r.tgid}\0${r.ts}`,
    }),
    sessionCommands: new DataLoader((ids) => loadSessionCommands(base, ids)),
  }
}
