// Wire records with every field of their proto message set to a distinct, non-default value,
// built by walking the reflection root: a field added to the proto is filled here without an
// edit, so the tests that carry these records through the pipeline see it too.
import { Long, snakeNames, v1Types } from '@ebbflow/proto'
import protobuf from 'protobufjs'

export type MessageName = keyof typeof v1Types

/** The event messages an EventBatch carries, by its repeated field's name. */
export const EVENT_MESSAGES = {
  exec: 'Exec',
  exit: 'Exit',
  fork: 'Fork',
  tcp: 'TcpEvent',
  traffic: 'TrafficCounter',
  syscall: 'SyscallEvent',
  syscallCount: 'SyscallCount',
  drops: 'Drops',
  file: 'FileAccess',
} as const satisfies Record<string, MessageName>

/**
 * Values with a domain the pipeline checks or stores in a typed column (an address column is
 * IPv6, a family is 4 or 6, times are real wall-clock times). They give a field a legal value;
 * they never decide which fields are walked.
 */
function domainValue(field: string, n: number, baseNs: bigint): unknown {
  switch (field) {
    case 'timeNs':
      return Long.fromBigInt(baseNs + BigInt(n) * 1000n, true)
    case 'ipFamily':
      return 6
    case 'saddr':
    case 'daddr':
    case 'remoteAddr':
      // One group holds 16 bits: past 0xffff, two (written as ClickHouse prints them).
      return n > 0xffff
        ? `2001:db8::${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
        : `2001:db8::${n.toString(16)}`
    case 'exitCode':
      // An exit status is 0–255.
      return (n % 255) + 1
    case 'signal':
      // Linux signals are 1–64; the column is a UInt8.
      return (n % 64) + 1
    case 'containerId':
      return n.toString(16).padStart(64, 'a')
    case 'path':
      // File paths are absolute (the ingester dead-letters a relative one).
      return `/full/${n}`
    default:
      return undefined
  }
}

/** A plain object for `type` with every field set, each value distinct (counter `seed`). */
export function fullMessage(
  type: protobuf.Type,
  seed: { n: number },
  baseNs: bigint,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of type.fieldsArray) {
    f.resolve()
    const n = ++seed.n
    let v: unknown = domainValue(f.name, n, baseNs)
    if (v === undefined) {
      if (f.map) v = { [`key${n}`]: `value${n}` }
      else if (f.resolvedType instanceof protobuf.Type)
        v = fullMessage(f.resolvedType, seed, baseNs)
      else if (f.resolvedType instanceof protobuf.Enum)
        v = Math.max(...Object.values(f.resolvedType.values))
      else
        switch (f.type) {
          case 'string':
            v = `${type.name}.${f.name}#${n}`
            break
          case 'bool':
            v = true
            break
          case 'uint64':
          case 'int64':
          case 'fixed64':
            v = Long.fromNumber(1_000_000 + n, f.type !== 'int64')
            break
          case 'int32':
            v = -n
            break
          default:
            v = n
        }
    }
    out[f.name] = f.repeated && !f.map ? [v] : v
  }
  return out
}

/** Every (message path, field) leaf of a message, nested messages flattened: `Exec.task.pid`. */
export function leafFields(
  name: MessageName,
): { path: string; field: string; column: string; message: MessageName }[] {
  const out: { path: string; field: string; column: string; message: MessageName }[] = []
  const walk = (msg: MessageName, prefix: string) => {
    for (const f of v1Types[msg].fieldsArray) {
      f.resolve()
      const nested = f.resolvedType instanceof protobuf.Type && !f.map ? f.resolvedType.name : null
      if (nested && nested in v1Types) walk(nested as MessageName, `${prefix}${f.name}.`)
      else
        out.push({
          path: `${prefix}${f.name}`,
          field: f.name,
          column: snakeNames[msg].get(f.name)!,
          message: msg,
        })
    }
  }
  walk(name, `${name}.`)
  return out
}

/** Reads a dotted path of a plain object. */
export function at(o: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o)
}
