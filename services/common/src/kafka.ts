// Kafka chores shared by the services that read the event topics (the ingester, the API's
// live tail). Structural types, so this package does not need kafkajs itself.

import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { gzip, gzipSync, unzip, zstdCompress, zstdCompressSync, zstdDecompress } from 'node:zlib'

export interface TopicAdmin {
  listTopics(): Promise<string[]>
  createTopics(options: { topics: { topic: string }[]; waitForLeaders?: boolean }): Promise<boolean>
  fetchTopicMetadata(options: {
    topics: string[]
  }): Promise<{ topics: { name: string; partitions: { leader: number }[] }[] }>
}

/** How long created topics may take to show in the broker's metadata with a leader each. */
export const TOPICS_READY_MS = 30_000

/**
 * Creates the topics that do not exist yet (broker defaults for partitions and replication),
 * so a reader started before any collector has published waits for records instead of
 * failing its subscription. Returns the topics it created.
 */
export async function ensureTopics(
  admin: TopicAdmin,
  topics: readonly string[],
  readyMs = TOPICS_READY_MS,
): Promise<string[]> {
  const existing = new Set(await admin.listTopics())
  const missing = topics.filter((t) => !existing.has(t))
  if (missing.length === 0) return missing
  await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true })
  // kafkajs waits for the leaders only when it created every topic it was asked for. When
  // another client created one of them meanwhile (a collector's producer creates its topic on
  // first publish), it returns at once, and a subscription made next could be refused with
  // UNKNOWN_TOPIC_OR_PARTITION for a topic the broker's metadata did not hold yet.
  await topicsReady(admin, missing, readyMs)
  return missing
}

/** Waits until every topic shows in the metadata with a leader for each partition. */
async function topicsReady(admin: TopicAdmin, topics: string[], readyMs: number): Promise<void> {
  const deadline = Date.now() + readyMs
  for (;;) {
    let why: string
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics })
      const waiting = topics.filter((name) => {
        const t = found.find((x) => x.name === name)
        return !t || t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0)
      })
      if (waiting.length === 0) return
      why = `no leader yet for ${waiting.join(', ')}`
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable) throw err
      why = (err as Error).message
    }
    if (Date.now() >= deadline)
      throw new Error(
        `Kafka topics ${topics.join(', ')} were created but are not ready after ${readyMs} ms: ${why}`,
      )
    await sleep(100)
  }
}

/** What `registerCodecs` needs of the kafkajs module (structural: this package has no kafkajs). */
export interface KafkaCodecRegistry {
  CompressionTypes: { GZIP: number; ZSTD: number }
  CompressionCodecs: Record<number, () => unknown>
}

/**
 * Registers the codecs every process that produces or reads the event topics uses: zstd, which
 * kafkajs has none of (the collectors' default, EBBFLOW_KAFKA_COMPRESSION), and gzip in place
 * of kafkajs's own, whose decompression writes 16 KiB chunks. Pass the kafkajs module's default
 * export (CompressionCodecs is not among the names Node finds in its CommonJS exports).
 */
export function registerCodecs(kafkajs: KafkaCodecRegistry): void {
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes.ZSTD] = zstdCodec
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes.GZIP] = gzipCodec
}

/**
 * A kafkajs codec for zstd from `node:zlib` (Node 22.15+; no native package: the codec packages
 * kafkajs documents do not build against Node 24); `registerCodecs` registers it. kafkajs hands
 * compress() an encoder holding the batch's bytes.
 *
 * Its frames say their size (`pledgedSrcSize`: Node's asynchronous compression leaves the
 * frame's content size out otherwise), and decompression writes into one chunk of the size the
 * frame says (see `outputChunkBytes`): with node:zlib's default 16 KiB chunks, a batch of
 * 500 KB came out as ~30 buffers, each a round trip to the thread pool, then concatenated.
 * Batches up to SYNC_ZSTD_BYTES are compressed on the calling thread (see there).
 */
export function zstdCodec() {
  return {
    compress: async ({ buffer }: { buffer: Buffer }): Promise<Buffer> =>
      buffer.length <= SYNC_ZSTD_BYTES
        ? zstdCompressSync(buffer, { pledgedSrcSize: buffer.length })
        : zstdCompressAsync(buffer, {
            pledgedSrcSize: buffer.length,
            // The output is ~1/10 of the batch here: an eighth of it mostly takes one chunk
            // (10–20 % less CPU than 16 KiB chunks for a 1 MB batch).
            chunkSize: chunkWithin(buffer.length >> 3),
          }),
    decompress: (buffer: Buffer): Promise<Buffer> =>
      zstdDecompressAsync(buffer, { chunkSize: outputChunkBytes(buffer, zstdContentSize(buffer)) }),
  }
}

/**
 * A kafkajs codec for gzip, as kafkajs's own (node:zlib's gzip and unzip), whose decompression
 * writes into one chunk of the size the gzip trailer says (`outputChunkBytes`); `registerCodecs`
 * registers it.
 */
export function gzipCodec() {
  return {
    compress: async ({ buffer }: { buffer: Buffer }): Promise<Buffer> =>
      buffer.length <= SYNC_GZIP_BYTES ? gzipSync(buffer) : gzipAsync(buffer),
    decompress: (buffer: Buffer): Promise<Buffer> =>
      unzipAsync(buffer, { chunkSize: outputChunkBytes(buffer, gzipSize(buffer)) }),
  }
}

/**
 * Batches up to these sizes are compressed on the calling thread: node:zlib's asynchronous
 * call costs ~0.2 ms of CPU beyond the compression itself (a stream, a thread-pool round trip,
 * its callbacks), 4x the compression of an 8 KB batch, the few KB a collector's linger mostly
 * gathers (bench/RESULTS.md, "Compression on the calling thread"). The bounds keep each call
 * near 1 ms of the event loop (zstd ~2 µs per KB, gzip ~15); larger batches go to the pool.
 */
const SYNC_ZSTD_BYTES = 512 * 1024
const SYNC_GZIP_BYTES = 64 * 1024
const zstdCompressAsync = promisify(zstdCompress)
const zstdDecompressAsync = promisify(zstdDecompress)
const gzipAsync = promisify(gzip)
const unzipAsync = promisify(unzip)

/** node:zlib's smallest chunk. */
const MIN_CHUNK = 64
/** A size the compressed bytes claim is a hint, never an allocation beyond this. */
const MAX_CHUNK = 16 * 1024 * 1024
/** A chunk of about `bytes` where no size is known exactly: 64 KiB to MAX_CHUNK. */
const chunkWithin = (bytes: number) => Math.min(MAX_CHUNK, Math.max(64 * 1024, bytes))

/**
 * The output chunk for decompressing `compressed`: the size its header or trailer claims
 * (`claimed`, bounded: a claim is a hint, and a larger output simply takes more chunks) with
 * room to spare (a chunk filled to its end makes node:zlib allocate another for the stream's
 * last, empty call), or without a claim 16 times its size within 64 KiB–16 MiB.
 */
export function outputChunkBytes(compressed: Uint8Array, claimed: number | undefined): number {
  if (claimed === undefined) return chunkWithin(compressed.length * 16)
  return Math.min(MAX_CHUNK, claimed + MIN_CHUNK)
}

/**
 * The content size a zstd frame's header states (RFC 8878, 3.1.1.1), or undefined when the
 * frame leaves it out or the bytes are not a zstd frame.
 */
export function zstdContentSize(b: Uint8Array): number | undefined {
  if (b.length < 6 || b[0] !== 0x28 || b[1] !== 0xb5 || b[2] !== 0x2f || b[3] !== 0xfd) return
  const descriptor = b[4]!
  const fcsFlag = descriptor >> 6
  const singleSegment = (descriptor >> 5) & 1
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!
  if (fcsBytes === 0) return
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes
  if (b.length < at + fcsBytes) return
  const view = new DataView(b.buffer, b.byteOffset + at, fcsBytes)
  if (fcsBytes === 1) return view.getUint8(0)
  if (fcsBytes === 2) return view.getUint16(0, true) + 256
  if (fcsBytes === 4) return view.getUint32(0, true)
  return Number(view.getBigUint64(0, true))
}

/** The size (modulo 2^32) a gzip member's trailer states, or undefined when not gzip. */
export function gzipSize(b: Uint8Array): number | undefined {
  if (b.length < 18 || b[0] !== 0x1f || b[1] !== 0x8b) return
  return new DataView(b.buffer, b.byteOffset + b.length - 4, 4).getUint32(0, true)
}
