// Cluster mode: the same migration files, rewritten statement by statement for a ClickHouse
// cluster. Each table `ebbflow.T` becomes `ebbflow.T_local`, a Replicated*MergeTree on every
// node (`ON CLUSTER`), with `ebbflow.T` a Distributed table over the shards under the name
// every reader and writer already uses. Materialized views read and write the local tables:
// a block inserted through the Distributed table reaches one shard's T_local, and that
// shard's views roll it up locally.
import { EbbflowError } from '@ebbflow/common/errors'

/** Letters, digits, '_', '-', '.': a cluster name is spliced into DDL (it comes from configuration). */
export const CLUSTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/** The name itself, or a CONFIG_INVALID error for one that could not be spliced safely. */
export function checkClusterName(cluster: string): string {
  if (!CLUSTER_NAME.test(cluster))
    throw new EbbflowError(
      'CONFIG_INVALID',
      `cluster name ${JSON.stringify(cluster)}: use letters, digits, '_', '-', '.'`,
    )
  return cluster
}

const CREATE_DB = /^CREATE DATABASE IF NOT EXISTS (\w+)$/
const CREATE_TABLE =
  /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*(\([\s\S]*\))\s*ENGINE = (\w*MergeTree)(?:\(([^)]*(?:\([^)]*\)[^)]*)*)\))?\s*([\s\S]*)$/
const CREATE_MV =
  /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+) AS\s*([\s\S]*)$/
const ALTER = /^ALTER TABLE (\w+)\.(\w+)\s+([\s\S]*)$/

/**
 * The statements of one single-server statement in cluster form. Knows the shapes our
 * migrations use (CREATE DATABASE/TABLE/MATERIALIZED VIEW … IF NOT EXISTS, ALTER TABLE) and
 * refuses anything else, so a new kind of statement cannot silently run on one node only.
 */
export function toClusterStatements(statement: string, cluster: string): string[] {
  const on = `ON CLUSTER '${checkClusterName(cluster)}'`
  const s = statement.trim()
  let m = CREATE_DB.exec(s)
  if (m) return [`CREATE DATABASE IF NOT EXISTS ${m[1]} ${on}`]
  m = CREATE_TABLE.exec(s)
  if (m) {
    const [, db, table, columns, engine, engineArgs, rest] = m
    const local = `${table}_local`
    const path = `'/clickhouse/tables/{shard}/${db}/${local}'`
    const args = [path, `'{replica}'`, ...(engineArgs?.trim() ? [engineArgs.trim()] : [])]
    // Replicated tables deduplicate inserts by default (replicated_deduplication_window);
    // the non-replicated window setting means nothing to them.
    const settings = rest!
      .replace(/,?\s*non_replicated_deduplication_window = \d+/, '')
      .replace(/SETTINGS\s*,\s*/, 'SETTINGS ')
      .replace(/\s*SETTINGS\s*$/, '')
    return [
      `CREATE TABLE IF NOT EXISTS ${db}.${local} ${on}\n${columns}\nENGINE = Replicated${engine}(${args.join(', ')})\n${settings}`,
      `CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} AS ${db}.${local}\nENGINE = Distributed('${cluster}', '${db}', '${local}', rand())`,
    ]
  }
  m = CREATE_MV.exec(s)
  if (m) {
    const [, db, view, toDb, toTable, select] = m
    const localSelect = select!.replace(/\bFROM (\w+)\.(\w+)/g, 'FROM $1.$2_local')
    return [
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${view}_local ${on} TO ${toDb}.${toTable}_local AS\n${localSelect}`,
    ]
  }
  m = ALTER.exec(s)
  if (m) {
    const local = `ALTER TABLE ${m[1]}.${m[2]}_local ${on} ${m[3]}`
    // A column change must reach the Distributed table too: it was created AS the local
    // table and keeps the columns it had then.
    if (/^\s*(?:ADD|DROP|MODIFY|RENAME) COLUMN\b/.test(m[3]!))
      return [local, `ALTER TABLE ${m[1]}.${m[2]} ${on} ${m[3]}`]
    return [local]
  }
  throw new EbbflowError(
    'MIGRATION_CLUSTER',
    `no cluster form for this statement (teach cluster.ts its shape): ${s.slice(0, 120)}`,
  )
}

/**
 * A bookkeeping table (the migrations ledger, schema settings) in cluster form: one replicated
 * table under a path without `{shard}`, so every node of every shard shares one copy.
 */
export function clusterBookkeeping(sql: string, cluster: string): string {
  const on = `ON CLUSTER '${checkClusterName(cluster)}'`
  const m = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)/.exec(sql)
  if (!m) throw new EbbflowError('MIGRATION_CLUSTER', 'bookkeeping table without a name')
  return sql
    .replace(m[0], `${m[0]} ${on}`)
    .replace(
      /ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?/,
      (_w, engine: string, args: string | undefined) =>
        `ENGINE = Replicated${engine}('/clickhouse/tables/all/${m[1]}/${m[2]}', '{replica}'${args ? `, ${args}` : ''})`,
    )
}
