// Kafka chores shared by the services that read the event topics (the ingester, the API's
// live tail). Structural types, so this package does not need kafkajs itself.

import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { zstdCompress, zstdDecompress } from 'node:zlib'

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
