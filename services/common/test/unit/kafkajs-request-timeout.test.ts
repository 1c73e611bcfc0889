// kafkajs checks its connections' requests for timeouts on a 100 ms interval. As shipped, the
// interval runs for as long as a connection is open, so an idle collector woke ten times a
// second per connection for nothing; as patched (patches/kafkajs+2.2.4.patch) it runs only
// while a request is in flight. These tests pin both halves: no interval when nothing is in
// flight, and a request that gets no answer still times out, through the public client too.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { createServer, type Socket } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import { Kafka, logLevel } from 'kafkajs'
import { until } from '../../../../tests/support/proc.ts'

const require = createRequire(import.meta.url)
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js')

/** Queues made by a test, destroyed after it even when it fails (an interval would hold the
 * process open). */
const made: { destroy(): void }[] = []
afterEach(() => {
  for (const q of made.splice(0)) q.destroy()
})

function queue(requestTimeout: number) {
  const q = new RequestQueue({
    maxInFlightRequests: null,
    requestTimeout,
    enforceRequestTimeout: true,
    clientId: 'test',
    broker: 'test:9092',
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  })
  made.push(q)
  return q
}

function request(correlationId: number) {
  let settled: { ok: boolean; error?: Error } | undefined
  const entry = {
    correlationId,
    apiName: 'Produce',
    apiKey: 0,
    apiVersion: 7,
    resolve: () => (settled = { ok: true }),
    reject: (error: Error) => (settled = { ok: false, error }),
  }
  return {
    pushed: { entry, expectResponse: true, sendRequest: () => {} },
    settled: () => settled,
  }
}

describe('kafkajs request timeout check (patched)', () => {
  it('runs only while a request is in flight', () => {
    const q = queue(30_000)
    q.scheduleRequestTimeoutCheck()
    assert.equal(q.requestTimeoutIntervalId, null, 'an idle connection has no interval')
    const a = request(1)
    const b = request(2)
    q.push(a.pushed)
    assert.notEqual(q.requestTimeoutIntervalId, null, 'a request in flight is checked')
    q.push(b.pushed)
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 })
    assert.notEqual(q.requestTimeoutIntervalId, null, 'one request still in flight')
    q.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 })
    assert.equal(q.requestTimeoutIntervalId, null, 'stopped once none is in flight')
    assert.deepEqual([a.settled(), b.settled()], [{ ok: true }, { ok: true }])
  })

  it('still times out a request that gets no answer, then stops', async () => {
    const q = queue(150)
    q.scheduleRequestTimeoutCheck()
    const r = request(7)
    const started = Date.now()
    q.push(r.pushed)
    const settled = await until('the request settled', r.settled, (v) => v !== undefined, 5_000, 20)
    assert.equal(settled?.ok, false)
    assert.equal(settled?.error?.name, 'KafkaJSRequestTimeoutError')
    assert.ok(Date.now() - started >= 150, 'not before its timeout')
    assert.equal(q.inflight.size, 0)
    assert.equal(q.requestTimeoutIntervalId, null)
  })

  it('after destroy() (a disconnect), nothing is checked until the next connect', () => {
    const q = queue(30_000)
    q.scheduleRequestTimeoutCheck()
    q.destroy()
    q.push(request(3).pushed)
    assert.equal(q.requestTimeoutIntervalId, null)
    q.scheduleRequestTimeoutCheck()
    assert.notEqual(
      q.requestTimeoutIntervalId,
      null,
      'the connect re-arms it for what is in flight',
    )
  })

  it('through the client: a broker that never answers fails the connect on its timeout', async () => {
    const sockets: Socket[] = []
    const server = createServer((s) => sockets.push(s)) // accepts, reads, never writes
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${port}`],
      requestTimeout: 300,
      connectionTimeout: 1_000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    })
    const producer = kafka.producer()
    const started = Date.now()
    try {
      // The first request (ApiVersions, whose own timeout is the connection timeout's) times out.
      await assert.rejects(producer.connect(), (err: Error & { cause?: Error }) => {
        assert.match(err.message, /Request ApiVersions\(.*\) timed out/)
        assert.equal(err.cause?.name, 'KafkaJSRequestTimeoutError')
        return true
      })
      assert.ok(Date.now() - started >= 300, 'waited for the request timeout')
      assert.ok(sockets.length >= 1, 'the request reached the silent broker')
    } finally {
      await producer.disconnect().catch(() => {})
      for (const s of sockets) s.destroy()
      server.close()
    }
  })
})
