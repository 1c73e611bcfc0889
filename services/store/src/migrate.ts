// Forward-only schema migrations: infra/clickhouse/migrations/NNNN_name.sql, applied in
// order and recorded in ebbflow.schema_migrations. A migration that was applied and has
// since been edited stops the migrator: the database no longer matches the files.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EbbflowError } from '@ebbflow/common/errors'
import { clusterBookkeeping, toClusterStatements } from './cluster.ts'
import type { Store } from './store.ts'

/** infra/clickhouse/migrations of this checkout. */
export const DEFAULT_MIGRATIONS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../../infra/clickhouse/migrations',
)

export interface Migration {
  version: number
  name: string
  /** sha256 of the file's text before placeholders are substituted. */
  checksum: string
  sql: string
}

export interface MigrateOptions {
  /** Folder of NNNN_name.sql files. Default: infra/clickhouse/migrations. */
  dir?: string
  /** Substituted for `{retention_days}`. Default: 30. */
  retentionDays?: number
  /**
   * A ClickHouse cluster name: tables become Replicated*MergeTree `T_local` on every node with
   * a Distributed `T` over them (`ON CLUSTER`). Default: none (one server, or chDB).
   */
  cluster?: string
  /** Told about each migration applied. */
  onApplied?: (m: Migration) => void
  /** Told about each table whose TTL was changed to a new retention. */
  onRetentionChanged?: (table: string, from: number | undefined, to: number) => void
  /**
   * When a table or view an applied migration created is gone (dropped by hand, a restore that
   * missed it), run every migration's statements again, in order, to create it as the files
   * say; without it, the migrator refuses with the missing names. The statements are
   * idempotent (`IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`, `MODIFY COLUMN` to the same type),
   * so what exists is left as it is. The rows a dropped table held are not brought back.
   */
  recreateMissing?: boolean
}

export interface MigrateResult {
  applied: Migration[]
  /** Versions already in the database, unchanged. */
  skipped: number[]
  /** Tables whose TTL was altered because the retention changed since the last run. */
  retentionChanged: string[]
  /** Tables and views created again because they were missing (`recreateMissing`). */
  recreated: string[]
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/

export function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  const migrations: Migration[] = []
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue
    const m = FILE.exec(file)
    if (!m) throw new EbbflowError('MIGRATION_NAME', `${file}: expected NNNN_name.sql`)
    const sql = readFileSync(join(dir, file), 'utf8')
    const version = Number(m[1])
    if (migrations.some((x) => x.version === version))
      throw new EbbflowError('MIGRATION_NAME', `${file}: version ${version} appears twice`)
    migrations.push({
      version,
      name: m[2]!,
      checksum: createHash('sha256').update(sql).digest('hex'),
      sql,
    })
  }
  return migrations
}

/** Substitutes `{retention_days}`; any other `{word}` placeholder is a mistake in the file. */
export function renderMigration(sql: string, values: { retentionDays: number }): string {
  return sql.replace(/\{([a-z_]+)\}/g, (whole, key: string) => {
    if (key === 'retention_days') return String(values.retentionDays)
    throw new EbbflowError('MIGRATION_PLACEHOLDER', `unknown placeholder ${whole}`)
  })
}

/** The statements of a file: `--` comments dropped, split at a `;` that ends a line. */
export function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
  return withoutComments
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** A migration's statements as they run: placeholders filled, in cluster form if asked. */
export function renderStatements(
  m: Migration,
  values: { retentionDays: number; cluster?: string | undefined },
): string[] {
  const statements = splitStatements(renderMigration(m.sql, values))
  return values.cluster
    ? statements.flatMap((s) => toClusterStatements(s, values.cluster!))
    : statements
}

const TTL_TABLE =
  /^CREATE TABLE IF NOT EXISTS (\w+\.\w+)[\s\S]*?\nTTL (.+?) \+ INTERVAL \{retention_days\} DAY/

/** Tables with a retention TTL and the time expression it adds the interval to. */
export function retentionTables(migrations: readonly Migration[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of migrations)
    for (const s of splitStatements(m.sql)) {
      const t = TTL_TABLE.exec(s)
      if (t) out.set(t[1]!, t[2]!)
    }
  return out
}

const SETTINGS_TABLE = `CREATE TABLE IF NOT EXISTS ebbflow.schema_settings
(
    name String,
    value String,
    at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(at)
ORDER BY name`

const LEDGER = `CREATE TABLE IF NOT EXISTS ebbflow.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version`

/**
 * Applies the pending migrations in order; idempotent. Refuses (before applying anything)
 * when an applied migration's file changed or disappeared. A migration is recorded only after
 * all its statements ran; the statements are `IF NOT EXISTS`, so one interrupted half way is
 * simply run again.
 */
export async function migrate(store: Store, options: MigrateOptions = {}): Promise<MigrateResult> {
  const retentionDays = options.retentionDays ?? 30
  if (!Number.isInteger(retentionDays) || retentionDays < 1)
    throw new EbbflowError('MIGRATION_RETENTION', `retention days must be a positive integer`)
  const migrations = readMigrations(options.dir)
  const cluster = options.cluster
  const run = async (sql: string) => {
    for (const statement of cluster ? toClusterStatements(sql, cluster) : [sql])
      await store.exec(statement)
  }
  await run('CREATE DATABASE IF NOT EXISTS ebbflow')
  if (cluster) {
    await store.exec(clusterBookkeeping(LEDGER, cluster))
    await store.exec(clusterBookkeeping(SETTINGS_TABLE, cluster))
  } else {
    await store.exec(LEDGER)
    await store.exec(SETTINGS_TABLE)
  }
  const applied = await store.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM ebbflow.schema_migrations ORDER BY version',
  )
  const byVersion = new Map(migrations.map((m) => [m.version, m]))
  const problems: string[] = []
  for (const a of applied) {
    const file = byVersion.get(Number(a.version))
    if (!file) problems.push(`migration ${a.version} (${a.name}) was applied but its file is gone`)
    else if (file.checksum !== a.checksum)
      problems.push(
        `migration ${a.version} (${a.name}) was applied with checksum ${a.checksum.slice(0, 12)}… but its file now has ${file.checksum.slice(0, 12)}…; migrations are forward-only: add a new one instead of editing`,
      )
  }
  if (problems.length > 0)
    throw new EbbflowError(
      'MIGRATION_CHANGED',
      `refusing to migrate:\n  - ${problems.join('\n  - ')}`,
    )
  const done = new Set(applied.map((a) => Number(a.version)))
  const runMigration = async (m: Migration, what: string) => {
    for (const statement of renderStatements(m, { retentionDays, cluster })) {
      try {
        await store.exec(statement)
      } catch (err) {
        throw new EbbflowError('MIGRATION_FAILED', `${what} failed: ${(err as Error).message}`, {
          cause: err,
        })
      }
    }
  }
  const result: MigrateResult = { applied: [], skipped: [], retentionChanged: [], recreated: [] }
  for (const m of migrations) {
    if (done.has(m.version)) {
      result.skipped.push(m.version)
      continue
    }
    await runMigration(m, `migration ${m.version} (${m.name})`)
    await store.insert('ebbflow.schema_migrations', [
      { version: m.version, name: m.name, checksum: m.checksum },
    ])
    result.applied.push(m)
    options.onApplied?.(m)
  }
  let missing = await missingObjects(store, migrations, cluster)
  if (missing.length > 0 && options.recreateMissing) {
    const names = missing.map((x) => x.name).join(', ')
    for (const m of migrations)
      await runMigration(m, `re-running migration ${m.version} (${m.name}) to create ${names}`)
    result.recreated = missing.map((x) => x.name)
    missing = await missingObjects(store, migrations, cluster)
  }
  if (missing.length > 0)
    throw new EbbflowError(
      'MIGRATION_DRIFT',
      `the store lacks what applied migrations created:\n  - ${missing
        .map((x) => `${x.name} (migration ${x.version}, ${x.migration})`)
        .join(
          '\n  - ',
        )}\nrun \`ebbflow migrate --recreate-missing\` to create them again as the migrations say (their old rows are not restored)`,
    )
  await applyRetention(store, migrations, retentionDays, done.size === 0, result, options)
  return result
}

const CREATES = /^CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS (ebbflow\.\w+)/
const DROPS = /^DROP (?:TABLE|VIEW|DICTIONARY) (?:IF EXISTS )?(ebbflow\.\w+)/

/**
 * The tables and views the migrations leave in the database (created, and not dropped by a
 * later statement), each with the migration that created it last.
 */
export function migrationObjects(
  migrations: readonly Migration[],
  cluster?: string,
): Map<string, { version: number; migration: string }> {
  const out = new Map<string, { version: number; migration: string }>()
  for (const m of migrations)
    for (const statement of splitStatements(m.sql)) {
      const created = CREATES.exec(statement)
      if (created) {
        const from = { version: m.version, migration: m.name }
        const [, kind, name] = created as unknown as [string, string, string]
        // The cluster form (cluster.ts): a table is T_local on every node with a Distributed T,
        // a materialized view V_local over the local tables.
        if (!cluster) out.set(name, from)
        else if (kind === 'TABLE') out.set(name, from).set(`${name}_local`, from)
        else out.set(`${name}_local`, from)
      }
      const dropped = DROPS.exec(statement)
      if (dropped) {
        out.delete(dropped[1]!)
        out.delete(`${dropped[1]!}_local`)
      }
    }
  return out
}

async function missingObjects(
  store: Store,
  migrations: readonly Migration[],
  cluster: string | undefined,
): Promise<{ name: string; version: number; migration: string }[]> {
  const expected = migrationObjects(migrations, cluster)
  const present = new Set(
    (
      await store.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = 'ebbflow'",
      )
    ).map((t) => `ebbflow.${t.name}`),
  )
  return [...expected]
    .filter(([name]) => !present.has(name))
    .map(([name, from]) => ({ name, ...from }))
}

/**
 * Keeps every table's TTL at the configured retention: the tables take it when created;
 * a later run with another retention alters them (MODIFY TTL; with ttl_only_drop_parts it
 * drops whole expired parts, it does not rewrite them).
 */
async function applyRetention(
  store: Store,
  migrations: readonly Migration[],
  retentionDays: number,
  freshDatabase: boolean,
  result: MigrateResult,
  options: MigrateOptions,
): Promise<void> {
  const [stored] = await store.query<{ value: string }>(
    "SELECT argMax(value, at) AS value FROM ebbflow.schema_settings WHERE name = 'retention_days' HAVING count() > 0",
  )
  const previous = stored ? Number(stored.value) : undefined
  if (previous === retentionDays) return
  if (!(previous === undefined && freshDatabase)) {
    for (const [table, timeExpr] of retentionTables(migrations)) {
      const alter = `ALTER TABLE ${table} MODIFY TTL ${timeExpr} + INTERVAL ${retentionDays} DAY`
      for (const statement of options.cluster
        ? toClusterStatements(alter, options.cluster)
        : [alter])
        await store.exec(statement)
      result.retentionChanged.push(table)
      options.onRetentionChanged?.(table, previous, retentionDays)
    }
  }
  await store.insert('ebbflow.schema_settings', [
    { name: 'retention_days', value: String(retentionDays) },
  ])
}
