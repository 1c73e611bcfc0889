// The same schema through protobufjs reflection, parsed from the .proto at run time: used by
// the compatibility check and by the benchmark that chose static code over it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import protobuf from 'protobufjs'

export const PROTO_DIR = join(import.meta.dirname, '..')
export const EVENTS_PROTO = join(PROTO_DIR, 'ebbflow/v1/events.proto')

/** A fresh reflection root of ebbflow.v1 (parsing costs a few ms: keep it). */
export function loadReflectionRoot(): protobuf.Root {
  return protobuf.loadSync(EVENTS_PROTO)
}

/** Reflection root with the .proto's own (snake_case) field names, for descriptor snapshots. */
export function loadSchemaRoot(): protobuf.Root {
  return protobuf.parse(readFileSync(EVENTS_PROTO, 'utf8'), new protobuf.Root(), { keepCase: true })
    .root
}
