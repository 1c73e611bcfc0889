// The GraphQL `Metadata` type and its columns, both following the proto's Metadata message
// (through the store's META_COLUMNS): a field added to the proto is served here with nothing
// to edit, and the test that walks Metadata proves it reaches the answer.
import { META_COLUMNS } from '@ebbflow/store/tables'

const GRAPHQL_TYPE = { string: 'String', bool: 'Boolean!', map: 'JSON' } as const

export const metadataTypeDefs = /* GraphQL */ `
  "Who caused an event: every field of the wire record's Metadata (null when unknown)."
  type Metadata {
${META_COLUMNS.map((c) => `    ${c.field}: ${c.field === 'node' ? 'String!' : GRAPHQL_TYPE[c.type]}`).join('\n')}
  }
`

/** The metadata columns of a SELECT, each aliased `meta_<column>` beside the row's own. */
export const META_SELECT = META_COLUMNS.map((c) => `${c.column} AS meta_${c.column}`).join(', ')

/** A row's metadata as the GraphQL type has it: empty strings and maps are unknown (null). */
export function metaOf(row: Record<string, unknown>): Record<string, unknown> {
  const meta: Record<string, unknown> = {}
  for (const c of META_COLUMNS) {
    const v = row[`meta_${c.column}`]
    if (c.type === 'bool') meta[c.field] = v === true || v === 1 || v === 'true'
    else if (c.type === 'map')
      meta[c.field] = v && typeof v === 'object' && Object.keys(v).length > 0 ? v : null
    else meta[c.field] = v === '' || v == null ? (c.field === 'node' ? '' : null) : v
  }
  return meta
}
