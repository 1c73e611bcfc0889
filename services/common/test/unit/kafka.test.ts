import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { zstdCompress } from 'node:zlib'
import {
  ensureTopics,
  gzipCodec,
  gzipSize,
  outputChunkBytes,
  type TopicAdmin,
  zstdCodec,
  zstdContentSize,
} from '../../src/kafka.ts'

/** An admin whose topics are all missing, and whose metadata answers with `metadata`. */
function admin(metadata: TopicAdmin['fetchTopicMetadata']): TopicAdmin & { created: string[] } {
  const created: string[] = []
  return {
    created,
    listTopics: async () => [],
    createTopics: async ({ topics }) => {
      created.push(...topics.map((t) => t.topic))
      return false
    },
    fetchTopicMetadata: metadata,
  }
}

const unknownTopic = () =>
  Object.assign(new Error('This server does not host this topic-partition'), {
    type: 'UNKNOWN_TOPIC_OR_PARTITION',
    retriable: true,
  })

describe('ensureTopics', () => {
  it('waits through a retriable refusal and a partition without a leader', async () => {
    let calls = 0
    const a = admin(async ({ topics }) => {
      calls++
      if (calls === 1) throw unknownTopic()
      return {
        topics: topics.map((name) => ({ name, partitions: [{ leader: calls === 2 ? -1 : 1 }] })),
      }
    })
    assert.deepEqual(await ensureTopics(a, ['x', 'y'], 5_000), ['x', 'y'])
    assert.deepEqual(a.created, ['x', 'y'])
    assert.equal(calls, 3)
  })

  it('gives up after its wait with the topics and the last reason', async () => {
    const a = admin(async () => {
      throw unknownTopic()
    })
    const started = Date.now()
    await assert.rejects(
      ensureTopics(a, ['ebbflow.exec.v1'], 300),
      /Kafka topics ebbflow.exec.v1 were created but are not ready after 300 ms: This server does not host this topic-partition/,
    )
    assert.ok(Date.now() - started >= 300)
  })

  it('a refusal no retry cures is thrown at once', async () => {
    let calls = 0
    const a = admin(async () => {
      calls++
      throw Object.assign(new Error('Not authorized to access topics'), { retriable: false })
    })
    await assert.rejects(ensureTopics(a, ['t'], 5_000), /Not authorized/)
    assert.equal(calls, 1)
  })

  it('creates nothing and waits for nothing when every topic exists', async () => {
    const a = admin(async () => {
      throw new Error('not asked')
    })
    a.listTopics = async () => ['t', 'u']
    assert.deepEqual(await ensureTopics(a, ['t', 'u']), [])
    assert.deepEqual(a.created, [])
  })
})

describe('codecs', () => {
  // Bytes shaped like a batch: repeated fields with varying values, compressible ~10×.
  const batch = Buffer.concat(
    Array.from({ length: 6000 }, (_, i) =>
      Buffer.from(`\n@pod-${i % 200}\u0012ns-${i % 8}\u0018${i % 977}sys_${i % 300}-wl-${i % 40}`),
    ),
  )

  it('zstd: frames state their size, and decompress into one chunk of it', async () => {
    const z = zstdCodec()
    const frame = await z.compress({ buffer: batch })
    assert.equal(zstdContentSize(frame), batch.length)
    assert.equal(outputChunkBytes(frame, zstdContentSize(frame)), batch.length + 64)
    assert.ok((await z.decompress(frame)).equals(batch))
  })

  it('zstd: a frame without its size (another producer) still decompresses whole', async () => {
    const frame = await promisify(zstdCompress)(batch) // node:zlib's own: no content size
    assert.equal(zstdContentSize(frame), undefined)
    assert.equal(outputChunkBytes(frame, undefined), Math.max(64 * 1024, frame.length * 16))
    assert.ok((await zstdCodec().decompress(frame)).equals(batch))
  })

  it('zstd: a false size claim keeps the chunk bounded, and zstd refuses the frame', async () => {
    const frame = await zstdCodec().compress({ buffer: batch })
    const at = 5 // single-segment frame, no dictionary: the 4-byte size follows the descriptor
    assert.equal(frame[4]! >> 6, 2)
    const huge = Buffer.from(frame)
    huge.writeUInt32LE(0xffffffff, at)
    assert.equal(outputChunkBytes(huge, zstdContentSize(huge)), 16 * 1024 * 1024)
    const small = Buffer.from(frame)
    small.writeUInt32LE(100, at)
    assert.equal(outputChunkBytes(small, zstdContentSize(small)), 164)
    // zstd checks the claim against what it decodes: a wrong size is an error, never a
    // buffer of the claimed size.
    await assert.rejects(zstdCodec().decompress(huge))
    await assert.rejects(zstdCodec().decompress(small))
  })

  it('gzip: the trailer sizes the chunk; not-gzip bytes are refused as kafkajs refused them', async () => {
    const g = gzipCodec()
    const member = await g.compress({ buffer: batch })
    assert.equal(gzipSize(member), batch.length)
    assert.ok((await g.decompress(member)).equals(batch))
    assert.equal(gzipSize(Buffer.from('not gzip at all, long enough')), undefined)
    await assert.rejects(g.decompress(Buffer.from('not gzip at all, long enough')))
  })

  // Whether compress() finished without leaving the calling thread: node:zlib's thread pool
  // answers no sooner than the event loop's next turn, a few queued microtasks later.
  async function onCallingThread(p: Promise<Buffer>): Promise<boolean> {
    let settled = false
    void p.then(() => (settled = true))
    for (let i = 0; i < 5; i++) await Promise.resolve()
    const inline = settled
    await p
    return inline
  }

  it('small batches are compressed on the calling thread, large ones in the pool, alike', async () => {
    const small = batch.subarray(0, 8000)
    const large = Buffer.concat([batch, batch, batch]) // ~800 KB: over both bounds
    assert.ok(large.length > 512 * 1024)
    for (const [name, codec, size] of [
      ['zstd', zstdCodec(), zstdContentSize],
      ['gzip', gzipCodec(), gzipSize],
    ] as const) {
      for (const [input, inline] of [
        [small, true],
        [large, false],
      ] as const) {
        const p = codec.compress({ buffer: input })
        assert.equal(await onCallingThread(p), inline, `${name}, ${input.length} bytes`)
        const out = await p
        assert.equal(size(out), input.length, `${name} states the size`)
        assert.ok((await codec.decompress(out)).equals(input), `${name} round trip`)
      }
    }
  })

  it('not zstd: no size, and too short a header is no size either', () => {
    assert.equal(zstdContentSize(Buffer.from('hello world')), undefined)
    assert.equal(zstdContentSize(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x80])), undefined)
  })
})
