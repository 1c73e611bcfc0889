// A protobuf writer for the collector's hot path: bytes go straight into one growing Buffer.
// protobufjs's Writer queues an operation object per field and copies them out on finish(); at
// hundreds of thousands of events a second those objects were most of what the garbage
// collector's threads did (bench/collector-cost/profile.ts). Only the wire forms the event
// messages use are here; field numbers come from the reflection root (see wire.ts).

const TWO_32 = 2 ** 32

export class BatchWriter {
  private buf: Buffer
  private pos = 0
  /** Start of each open length-delimited field (the byte reserved for its length). */
  private readonly opens: number[] = []

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  /** Bytes written so far. */
  get len(): number {
    return this.pos
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  uint32(v: number): this {
    this.ensure(5)
    const b = this.buf
    let p = this.pos
    v >>>= 0
    while (v > 127) {
      b[p++] = (v & 127) | 128
      v >>>= 7
    }
    b[p++] = v
    this.pos = p
    return this
  }

  /** Two unsigned 32-bit halves of a uint64. */
  uint64Parts(low: number, high: number): this {
    this.ensure(10)
    const b = this.buf
    let p = this.pos
    let lo = low >>> 0
    let hi = high >>> 0
    while (hi) {
      b[p++] = (lo & 127) | 128
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    while (lo > 127) {
      b[p++] = (lo & 127) | 128
      lo >>>= 7
    }
    b[p++] = lo
    this.pos = p
    return this
  }

  /** A uint64 held in a number (exact below 2^53); a negative one as its two's complement,
   * as protobufjs writes it. */
  uint64(v: number): this {
    if (v >= 0 && v < TWO_32) return this.uint32(v)
    if (v >= 0) return this.uint64Parts(v % TWO_32, Math.floor(v / TWO_32))
    return this.int64Negative(v)
  }

  int32(v: number): this {
    return v >= 0 ? this.uint32(v) : this.int64Negative(v)
  }

  private int64Negative(v: number): this {
    // Two's complement over 64 bits: ~|v| + 1, in halves.
    const a = -v
    let lo = ~(a % TWO_32) >>> 0
    let hi = ~Math.floor(a / TWO_32) >>> 0
    lo = (lo + 1) >>> 0
    if (lo === 0) hi = (hi + 1) >>> 0
    return this.uint64Parts(lo, hi)
  }

  bool(v: boolean): this {
    this.ensure(1)
    this.buf[this.pos++] = v ? 1 : 0
    return this
  }

  string(s: string): this {
    // Room for the worst case (3 bytes per UTF-16 unit) and a 5-byte length; most strings are
    // short, so the length is written in the byte before and moved only when it needs more.
    this.ensure(s.length * 3 + 5)
    const n = this.buf.write(s, this.pos + 1, 'utf8')
    return this.placeLength(this.pos, n)
  }

  /**
   * The NUL-terminated string in `src[start, start + size)`, as string() would write
   * `src.toString('utf8', start, end)`: ASCII bytes are copied as they are (no string made);
   * anything else takes the decode, so invalid UTF-8 becomes U+FFFD exactly as it would.
   */
  cString(src: Buffer, start: number, size: number): this {
    let end = start
    const limit = start + size
    let ascii = true
    while (end < limit) {
      const c = src[end]!
      if (c === 0) break
      if (c > 127) ascii = false
      end++
    }
    const n = end - start
    if (!ascii || n > 127) return this.string(src.toString('utf8', start, end))
    this.ensure(n + 1)
    const b = this.buf
    let p = this.pos
    b[p++] = n
    for (let i = start; i < end; i++) b[p++] = src[i]!
    this.pos = p
    return this
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length + 5)
    this.uint32(v.length)
    this.buf.set(v, this.pos)
    this.pos += v.length
    return this
  }

  /** Opens a length-delimited field (after its tag): a nested message or a packed list. */
  fork(): this {
    this.ensure(1)
    this.opens.push(this.pos)
    this.pos++
    return this
  }

  /** Closes the field fork() opened, writing its length in front of it. */
  ldelim(): this {
    const at = this.opens.pop()!
    return this.placeLength(at, this.pos - at - 1)
  }

  /** `n` bytes start at at + 1: writes their length at `at`, moving them if it takes more than
   * one byte, and leaves pos after them. */
  private placeLength(at: number, n: number): this {
    if (n < 128) {
      this.buf[at] = n
      this.pos = at + 1 + n
      return this
    }
    let extra = 0
    for (let v = n >>> 7; v > 0; v >>>= 7) extra++
    this.ensure(extra)
    this.buf.copyWithin(at + 1 + extra, at + 1, at + 1 + n)
    this.pos = at
    this.uint32(n)
    this.pos = at + 1 + extra + n
    return this
  }

  /** The bytes written. They share the writer's memory: copy them before reset(). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos)
  }

  /** Empties the writer, keeping its memory for the next batch (no growth copies again). */
  reset(): void {
    this.pos = 0
    this.opens.length = 0
  }
}
