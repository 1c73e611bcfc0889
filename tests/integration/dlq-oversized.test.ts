// A record near Kafka's 1 MiB limit is accepted on its own topic, but as a dead letter (the
// record plus headers) it would not be: the letter is cut to fit, keeping the original's size,
// SHA-256 and origin, so writing it succeeds and the partition behind it moves on. Letters that
// fit alone but not together go in several sends. Real broker, default limits.
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { type DeadLetter, DLQ_HEADERS, KafkaDeadLetters } from '@ebbflow/ingester'
import { Kafka, logLevel } from 'kafkajs'
import { brokerUnavailable, startBroker, type TestBroker } from '../support/kafka-broker.ts'

const skip = brokerUnavailable()

describe('oversized dead letters', { skip: skip ?? false, timeout: 180_000 }, () => {
  let broker: TestBroker
  before(async () => {
    broker = await startBroker()
  })
  after(async () => {
    await broker?.stop()
  })

  it('are cut to fit with size, hash and origin kept; nothing is refused', async () => {
    const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING })
    const source = `events-${randomUUID()}`
    const dlq = `dlq-${randomUUID()}`
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: source }, { topic: dlq }], waitForLeaders: true })
    await admin.disconnect()

    // The broker takes the big record on its own topic: it is the dead letter that is too big.
    const big = randomBytes(1_040_000)
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: source, acks: -1, messages: [{ value: big }] })
    const raw = kafka.producer()
    await raw.connect()
    await assert.rejects(
      raw.send({
        topic: dlq,
        acks: -1,
        messages: [{ value: big, headers: { [DLQ_HEADERS.error]: 'x'.repeat(20_000) } }],
      }),
      /too large|MESSAGE_TOO_LARGE|larger than/i,
      'the untouched dead letter would be refused',
    )
    await raw.disconnect()
    await producer.disconnect()

    const mid = [randomBytes(600_000), randomBytes(600_000)]
    const letter = (value: Buffer, offset: string): DeadLetter => ({
      record: { topic: source, partition: 0, offset, key: Buffer.from('node-a'), value },
      reason: 'store_rejected',
      error: `refused: ${'e'.repeat(20_000)}`,
      source: 'kafka',
    })
    const sink = new KafkaDeadLetters([broker.bootstrap], dlq)
    await sink.write([letter(big, '0'), letter(mid[0]!, '1'), letter(mid[1]!, '2')])
    await sink.close()

    const consumer = kafka.consumer({ groupId: `dlq-read-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topic: dlq, fromBeginning: true })
    const got: { value: Buffer; headers: Record<string, string> }[] = []
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push({
          value: message.value!,
          headers: Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
          ),
        })
      },
    })
    const deadline = Date.now() + 30_000
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    await consumer.disconnect()
    assert.equal(got.length, 3)
    const [cut, a, b] = got.sort((x, y) =>
      x.headers[DLQ_HEADERS.offset]!.localeCompare(y.headers[DLQ_HEADERS.offset]!),
    ) as [(typeof got)[0], (typeof got)[0], (typeof got)[0]]
    assert.equal(cut.headers[DLQ_HEADERS.truncated], 'true')
    assert.equal(cut.headers[DLQ_HEADERS.originalBytes], String(big.length))
    assert.equal(cut.headers[DLQ_HEADERS.sha256], createHash('sha256').update(big).digest('hex'))
    assert.equal(cut.headers[DLQ_HEADERS.topic], source)
    assert.equal(cut.headers[DLQ_HEADERS.partition], '0')
    assert.equal(cut.headers[DLQ_HEADERS.reason], 'store_rejected')
    assert.ok(cut.value.length > 800_000 && cut.value.length < big.length, `${cut.value.length}`)
    assert.ok(big.subarray(0, cut.value.length).equals(cut.value), 'the kept part is the start')
    for (const [m, original] of [
      [a, mid[0]!],
      [b, mid[1]!],
    ] as const) {
      assert.equal(m.headers[DLQ_HEADERS.truncated], undefined)
      assert.ok(m.value.equals(original), 'a letter that fits is kept whole')
    }
  })
})
