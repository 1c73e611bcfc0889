// @ebbflow/proto: the ebbflow.v1 wire records. Encoders and decoders from protobufjs
// reflection over proto/ebbflow/v1/events.proto (measured faster than static code for our
// batches: proto/README.md), typed by the generated proto/gen/events.d.ts.
import type { ebbflow as generated } from '../gen/events.js'
import { loadReflectionRoot } from './reflect.ts'

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
  'EventBatch',
] as const
type Name = (typeof NAMES)[number]

const root = loadReflectionRoot()
const codecs = {} as Record<string, unknown>
for (const name of NAMES) codecs[name] = root.lookupType(`ebbflow.v1.${name}`)

/** Encoders and decoders of every ebbflow.v1 message (`v1.EventBatch.decode(bytes)`). */
export const v1 = codecs as { [K in Name]: Codec<K> }

// uint64 fields decode as Long (exact to 2^64); writers accept number or Long.
export { default as Long } from 'long'
export * from './compat.ts'
export * from './reflect.ts'
