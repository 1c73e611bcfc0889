// The schema check of a cold start. A function instance that ran every migration's
// `IF NOT EXISTS` statements on each start would spend most of its start-up on them; instead
// it asks the migration ledger one question — is the newest migration this build carries
// applied? — and trusts that ledger, which only `migrate` writes after a migration's every
// statement ran.
import { readdirSync } from 'node:fs'
import { EbbflowError } from '@ebbflow/common/errors'
import { DEFAULT_MIGRATIONS_DIR } from './migrate.ts'
import type { Store } from './store.ts'

const FILE = /^(\d{4})_[a-z0-9_]+\.sql$/

/** The newest migration version in `dir`, from the file names alone (no file is read). */
export function latestMigrationVersion(dir: string = DEFAULT_MIGRATIONS_DIR): number {
  let latest = 0
  for (const file of readdirSync(dir)) {
    const m = FILE.exec(file)
    if (m) latest = Math.max(latest, Number(m[1]))
  }
  if (latest === 0)
    throw new EbbflowError('MIGRATION_NAME', `no NNNN_name.sql migrations in ${dir}`)
  return latest
}

/**
 * Resolves with the store's newest applied migration when it is at least `expected`; rejects
 * with SCHEMA_BEHIND (not retriable by the caller itself: someone has to run `ebbflow migrate`)
 * otherwise. A store whose schema is newer than this build is accepted: migrations only add.
 */
export async function checkSchemaVersion(store: Store, expected: number): Promise<number> {
  let applied: number
  try {
    const [row] = await store.query<{ v: number | string }>(
      'SELECT max(version) AS v FROM ebbflow.schema_migrations',
    )
    applied = Number(row?.v ?? 0)
  } catch (err) {
    // A missing ledger is a store nobody migrated; anything else (the store is down) is the
    // store's own error, retriable as it says.
    if (!/UNKNOWN_(TABLE|DATABASE)|doesn't exist|does not exist/i.test(String(err))) throw err
    applied = 0
  }
  if (applied < expected)
    throw new EbbflowError(
      'SCHEMA_BEHIND',
      `the store's schema is at migration ${applied}, this build needs ${expected}: run \`ebbflow migrate\` against it (or set EBBFLOW_FUNCTION_SCHEMA=migrate)`,
    )
  return applied
}
