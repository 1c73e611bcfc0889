// The Kafka topic names, alone in a module so that configuration can name its defaults without
// loading the protobuf runtime (wire.ts re-exports them beside the encoders).
import type { Family } from './events/types.ts'

/** One topic per event family: each family's records (and the drops that count them). */
export const TOPICS: Readonly<Record<Family, string>> = {
  exec: 'ebbflow.exec.v1',
  net: 'ebbflow.net.v1',
  syscall: 'ebbflow.syscall.v1',
  file: 'ebbflow.file.v1',
}

/** Where the ingester puts records it cannot store, with their origin and reason. */
export const DLQ_TOPIC = 'ebbflow.dlq.v1'
