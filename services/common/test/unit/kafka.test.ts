import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ensureTopics, type TopicAdmin } from '../../src/kafka.ts'

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
