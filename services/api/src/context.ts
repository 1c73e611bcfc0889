// What every resolver of one request gets: the caller's scope, the query runner, the limits,
// and the request's DataLoaders (so nested fields batch instead of querying per row).
import type { Logger } from '@ebbflow/common'
import DataLoader from 'dataloader'
import type { PageLimits } from './pagination.ts'
import { type ExecRow, type ExitInfo, loadExits, loadSessionCommands } from './queries/exec.ts'
import type { QueryRunner, Scope } from './sql.ts'

export interface ApiLimits extends PageLimits {
  /** Commands returned for one session's playback, at most. */
  maxSessionCommands: number
  /** Points of one traffic series, at most. */
  maxSeriesPoints: number
}

export interface ApiContext {
  scope: Scope
  runner: QueryRunner
  limits: ApiLimits
  logger: Logger
  exits: DataLoader<ExecRow, ExitInfo | null, string>
  sessionCommands: DataLoader<string, ExecRow[]>
}

export function createContext(
  scope: Scope,
  runner: QueryRunner,
  limits: ApiLimits,
  logger: Logger,
): ApiContext {
  const base = { scope, runner, limits, logger }
  return {
    ...base,
    exits: new DataLoader((rows) => loadExits(base, rows), {
      cacheKeyFn: (r) => `${r.node}\0${r.boot_id}\0${r.tgid}\0${r.ts}`,
    }),
    sessionCommands: new DataLoader((ids) => loadSessionCommands(base, ids)),
  }
}

export type QueryContext = Pick<ApiContext, 'scope' | 'runner' | 'limits' | 'logger'>
