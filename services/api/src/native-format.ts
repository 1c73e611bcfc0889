// ClickHouse's Native format as a client of a given protocol revision reads it over HTTP.
//
// A ClickHouse server that receives `?client_protocol_version=N` (clickhouse-go v2 always
// sends it) writes each Native block with a BlockInfo before the counts and, from revision
// 54454, a "custom serialization" flag after each column's type. chDB has no client and writes
// the plain form. Both forms carry the same column bytes, so the plain form is rewritten here:
// the walk below only measures each column's data to know where to put the flag; it never
// decodes a value. Types it cannot measure (AggregateFunction states, Dynamic, JSON…) are
// refused with a clear error rather than sent misframed.

/** Protocol revisions of the Native block layout (ClickHouse's Core/ProtocolDefines.h). */
export const REVISION_WITH_BLOCK_INFO = 1
export const REVISION_WITH_CUSTOM_SERIALIZATION = 54454

export class NativeFormatError extends Error {}

class Reader {
  pos = 0
  readonly buf: Uint8Array
  constructor(buf: Uint8Array) {
    this.buf = buf
  }

  varint(): number {
    let result = 0
    let shift = 0
    for (;;) {
      if (this.pos >= this.buf.length) throw new NativeFormatError('truncated Native block')
      const b = this.buf[this.pos++]!
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
      if (shift > 63) throw new NativeFormatError('bad varint in Native block')
    }
  }

  text(): string {
    const n = this.varint()
    this.need(n)
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('utf8')
    this.pos += n
    return s
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new NativeFormatError('truncated Native block')
  }

  skip(n: number): void {
    this.need(n)
    this.pos += n
  }

  u64(): number {
    this.need(8)
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getBigUint64(0, true)
    this.pos += 8
    return Number(v)
  }

  /** The last of `rows` little-endian UInt64 offsets (Array and Map sizes), after skipping all. */
  lastOffset(rows: number): number {
    this.need(rows * 8)
    let last = 0
    if (rows > 0) {
      const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos + (rows - 1) * 8, 8)
      last = Number(view.getBigUint64(0, true))
    }
    this.pos += rows * 8
    return last
  }
}

const FIXED: Record<string, number> = {
  UInt8: 1,
  Int8: 1,
  Bool: 1,
  Nothing: 1,
  UInt16: 2,
  Int16: 2,
  Date: 2,
  UInt32: 4,
  Int32: 4,
  Float32: 4,
  Date32: 4,
  DateTime: 4,
  IPv4: 4,
  Decimal32: 4,
  UInt64: 8,
  Int64: 8,
  Float64: 8,
  DateTime64: 8,
  Decimal64: 8,
  BFloat16: 2,
  UInt128: 16,
  Int128: 16,
  UUID: 16,
  IPv6: 16,
  Decimal128: 16,
  UInt256: 32,
  Int256: 32,
  Decimal256: 32,
}

/** `Name(args)` → ['Name', 'args'] with args split at top-level commas. */
function parseType(type: string): { name: string; args: string[] } {
  const open = type.indexOf('(')
  if (open < 0) return { name: type.trim(), args: [] }
  const name = type.slice(0, open).trim()
  const inner = type.slice(open + 1, type.lastIndexOf(')'))
  const args: string[] = []
  let depth = 0
  let quoted = false
  let start = 0
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]
    if (quoted) {
      if (c === '\\') i++
      else if (c === "'") quoted = false
    } else if (c === "'") quoted = true
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === ',' && depth === 0) {
      args.push(inner.slice(start, i).trim())
      start = i + 1
    }
  }
  args.push(inner.slice(start).trim())
  return { name, args }
}

/** A Tuple element may be named: `a String` → `String`. */
function tupleElementType(arg: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*|`[^`]*`)\s+(.+)$/s.exec(arg)
  return m && !/^[A-Z][A-Za-z0-9]*\(/.test(arg) ? m[2]! : arg
}

/**
 * A column's serialization state prefix, written once before its data: LowCardinality's key
 * version (UInt64), wherever it is nested.
 */
function skipPrefix(r: Reader, type: string): void {
  const { name, args } = parseType(type)
  switch (name) {
    case 'LowCardinality':
      r.skip(8)
      break
    case 'Nullable':
    case 'Array':
      skipPrefix(r, args[0]!)
      break
    case 'Map':
      skipPrefix(r, args[0]!)
      skipPrefix(r, args[1]!)
      break
    case 'Tuple':
      for (const arg of args) skipPrefix(r, tupleElementType(arg))
      break
  }
}

/** LowCardinality's flags: the index width in the low byte, whether keys follow. */
const LC_INDEX_BYTES = [1, 2, 4, 8]
const LC_HAS_ADDITIONAL_KEYS = 1 << 9

/**
 * LowCardinality data: chunks of (flags, [key count, keys], index count, indexes) until
 * `rows` indexes; the keys are of the inner type without Nullable.
 */
function skipLowCardinality(r: Reader, inner: string, rows: number): void {
  const { name, args } = parseType(inner)
  const keyType = name === 'Nullable' ? args[0]! : inner
  let done = 0
  while (done < rows) {
    const flags = r.u64()
    const width = LC_INDEX_BYTES[flags & 0xff]
    if (width === undefined) throw new NativeFormatError('bad LowCardinality index type')
    if (flags & LC_HAS_ADDITIONAL_KEYS) skipColumn(r, keyType, r.u64())
    const n = r.u64()
    if (n === 0) throw new NativeFormatError('empty LowCardinality chunk')
    r.skip(n * width)
    done += n
  }
}

function skipColumn(r: Reader, type: string, rows: number): void {
  const { name, args } = parseType(type)
  const fixed = FIXED[name]
  if (fixed !== undefined) {
    r.skip(fixed * rows)
    return
  }
  switch (name) {
    case 'Enum8':
      r.skip(rows)
      break
    case 'Enum16':
      r.skip(2 * rows)
      break
    case 'Decimal': {
      const precision = Number(args[0])
      r.skip((precision <= 9 ? 4 : precision <= 18 ? 8 : precision <= 38 ? 16 : 32) * rows)
      break
    }
    case 'FixedString':
      r.skip(Number(args[0]) * rows)
      break
    case 'String':
      for (let i = 0; i < rows; i++) r.skip(r.varint())
      break
    case 'Nullable':
      r.skip(rows)
      skipColumn(r, args[0]!, rows)
      break
    case 'Array':
      skipColumn(r, args[0]!, r.lastOffset(rows))
      break
    case 'Map': {
      const n = r.lastOffset(rows)
      skipColumn(r, args[0]!, n)
      skipColumn(r, args[1]!, n)
      break
    }
    case 'Tuple':
      for (const arg of args) skipColumn(r, tupleElementType(arg), rows)
      break
    case 'LowCardinality':
      skipLowCardinality(r, args[0]!, rows)
      break
    case 'SimpleAggregateFunction':
      skipColumn(r, args[args.length - 1]!, rows)
      break
    default:
      throw new NativeFormatError(`type ${type} is not supported in Native for this client`)
  }
}

/**
 * Rewrites chDB's plain Native output as a client of protocol `revision` reads it. Revision 0
 * (no protocol version asked for) is the plain form, returned as it is.
 */
export function nativeForRevision(plain: Uint8Array, revision: number): Uint8Array {
  if (revision < REVISION_WITH_BLOCK_INFO) return plain
  const r = new Reader(plain)
  const parts: Uint8Array[] = []
  // BlockInfo: field 1 is_overflows = false, field 2 bucket_num = -1, field 0 ends it.
  const blockInfo = Uint8Array.of(1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0)
  const flag = Uint8Array.of(0)
  while (r.pos < plain.length) {
    const start = r.pos
    const columns = r.varint()
    const rows = r.varint()
    parts.push(blockInfo, plain.subarray(start, r.pos))
    for (let c = 0; c < columns; c++) {
      const headerStart = r.pos
      r.text()
      const type = r.text()
      parts.push(plain.subarray(headerStart, r.pos))
      if (revision >= REVISION_WITH_CUSTOM_SERIALIZATION) parts.push(flag)
      const dataStart = r.pos
      if (rows > 0) {
        skipPrefix(r, type)
        skipColumn(r, type, rows)
      }
      parts.push(plain.subarray(dataStart, r.pos))
    }
  }
  return Buffer.concat(parts)
}
