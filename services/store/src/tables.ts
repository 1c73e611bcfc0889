// The ebbflow tables the ingester writes, and Metadata's columns on every event table. Column
// names are those of infra/clickhouse/migrations.

import type { EventMeta } from '@ebbflow/common/events/types'
import { snakeNames, v1Types } from '@ebbflow/proto'

export type Table =
  | 'process_events'
  | 'tcp_connections'
  | 'traffic'
  | 'syscall_counts'
  | 'syscall_events'
  | 'file_accesses'
  | 'collector_stats'

export const TABLES: readonly Table[] = [
  'process_events',
  'tcp_connections',
  'traffic',
  'syscall_counts',
  'syscall_events',
  'file_accesses',
  'collector_stats',
]

/**
 * Metadata's columns, one per proto field with the field's own snake_case name: a field added
 * to the proto needs its column (a migration) and nothing here. The test that walks Metadata
 * proves every field reaches its column.
 */
export const META_COLUMNS: readonly MetaColumn[] = v1Types.Metadata.fieldsArray.map((f) => ({
  field: f.name as keyof EventMeta,
  column: snakeNames.Metadata.get(f.name)!,
  type: f.map ? 'map' : f.type === 'bool' ? 'bool' : 'string',
  empty: f.map ? {} : f.type === 'bool' ? false : '',
}))

export interface MetaColumn {
  /** The field's name in EventMeta (the proto's camelCase name). */
  field: keyof EventMeta
  /** The column on every event table (the proto's snake_case name). */
  column: string
  type: 'string' | 'bool' | 'map'
  /** The column's default: what an absent field is stored as. */
  empty: unknown
}
