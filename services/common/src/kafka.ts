// Kafka chores shared by the services that read the event topics (the ingester, the API's
// live tail). Structural types, so this package does not need kafkajs itself.

import { promisify } from 'node:util'
import { zstdCompress, zstdDecompress } from 'node:zlib'

export interface TopicAdmin {
  listTopics(): Promise<string[]>
  createTopics(options: { topics: { topic: string }[]; waitForLeaders?: boolean }): Promise<boolean>
}

/**
 * Creates the topics that do not exist yet (broker defaults for partitions and replication),
 * so a reader started before any collector has published waits for records instead of
 * failing its subscription. Returns the topics it created.
 */
export async function ensureTopics(
  admin: TopicAdmin,
  topics: readonly string[],
): Promise<string[]> {
  const existing = new Set(await admin.listTopics())
  const missing = topics.filter((t) => !existing.has(t))
  if (missing.length > 0)
    await admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true })
  return missing
}

/**
 * A kafkajs codec for zstd from `node:zlib` (Node 22.15+; no native package: the codec packages
 * kafkajs documents do not build against Node 24). Register it with kafkajs's
 * `CompressionCodecs[CompressionTypes.ZSTD]` in every process that produces or reads zstd
 * record batches. kafkajs hands compress() an encoder holding the batch's bytes.
 */
export function zstdCodec() {
  return {
    compress: (encoder: { buffer: Buffer }): Promise<Buffer> => zstdCompressAsync(encoder.buffer),
    decompress: (buffer: Buffer): Promise<Buffer> => zstdDecompressAsync(buffer),
  }
}

const zstdCompressAsync = promisify(zstdCompress)
const zstdDecompressAsync = promisify(zstdDecompress)
