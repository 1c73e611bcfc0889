// @ebbflow/proto: the ebbflow.v1 wire records. Encoders and decoders from protobufjs
// reflection over proto/ebbflow/v1/events.proto (measured faster than static code for our
// batches: proto/README.md), typed by the generated proto/gen/events.d.ts.

import type protobuf from 'protobufjs'
import type { ebbflow as generated } from '../gen/events.js'
import { loadReflectionRoot, loadSchemaRoot } from './reflect.ts'

export type { ebbflow as pb } from '../gen/events.js'

type G = typeof generated.v1
type Codec<K extends keyof G> = Pick<G[K], 'encode' | 'decode'>
const NAMES = [
  'Metadata',
  'Task',
  'Exec',
  'Exit',
  'Fork',
  'TcpEvent',
  'TrafficCounter',
  'SyscallCount',
  'SyscallEvent',
  'Drops',
  'FileAccess',
  'EventBatch',
] as const
type Name = (typeof NAMES)[number]

const root = loadReflectionRoot()
const codecs = {} as Record<string, unknown>
for (const name of NAMES) codecs[name] = root.lookupType(`ebbflow.v1.${name}`)

/** Encoders and decoders of every ebbflow.v1 message (`v1.EventBatch.decode(bytes)`). */
export const v1 = codecs as { [K in Name]: Codec<K> }

/**
 * The same messages as reflection types: their fields (camelCase names, numbers, types) and
 * enums. Code that must follow the schema (which Metadata fields exist, a repeated field's
 * number, an enum's values) reads them here instead of copying numbers by hand.
 */
export const v1Types = codecs as { [K in Name]: protobuf.Type }

/** The .proto's own snake_case name of each field, by message and camelCase name. */
export const snakeNames: { [K in Name]: ReadonlyMap<string, string> } = (() => {
  const schema = loadSchemaRoot()
  const out = {} as Record<Name, Map<string, string>>
  for (const name of NAMES) {
    const snake = schema.lookupType(`ebbflow.v1.${name}`)
    const camel = v1Types[name]
    out[name] = new Map(
      camel.fieldsArray.map((f) => [f.name, snake.fieldsById[f.id]!.name] as const),
    )
  }
  return out
})()

// uint64 fields decode as Long (exact to 2^64); writers accept number or Long.
export { default as Long } from 'long'
// The protobuf reader, for code that reads a record's header without decoding the rest.
export { Reader } from 'protobufjs'
export * from './compat.ts'
export * from './reflect.ts'
