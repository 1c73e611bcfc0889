// What a query of queries/ needs: the caller's scope, the runner and the limits. Kept apart from
// context.ts, whose DataLoaders call into queries/: the queries depend on this, not on it.
import type { Logger } from '@ebbflow/common'
import type { PageLimits } from './pagination.ts'
import type { QueryRunner, Scope } from './sql.ts'

export interface ApiLimits extends PageLimits {
  /** Commands returned for one session's playback, at most. */
  maxSessionCommands: number
  /** Points of one traffic series, at most. */
  maxSeriesPoints: number
}

export interface QueryContext {
  scope: Scope
  runner: QueryRunner
  limits: ApiLimits
  logger: Logger
}
