// kafkajs's receive path as patched (patches/kafkajs+2.2.4.patch): a connection copies each
// socket read into one buffer per response, because a plain TCP socket now reads into one
// buffer of its own that the next read overwrites.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'

const require = createRequire(import.meta.url)
const Connection = require('kafkajs/src/network/connection.js')
const { createLogger, LEVELS } = require('kafkajs/src/loggers/index.js')
const socketFactory = require('kafkajs/src/network/socketFactory.js')

interface Fulfilled {
  correlationId: number
  payload: Buffer
  size: number
}

/** What the tests use of kafkajs's internal Connection. */
interface ReceivingConnection {
  processData(data: Buffer): void
  requestQueue: unknown
}

/** A connection that was never connected, its request queue replaced by a recorder. */
function connection(): { conn: ReceivingConnection; fulfilled: Fulfilled[]; rejected: Error[] } {
  const conn: ReceivingConnection = new Connection({
    host: '127.0.0.1',
    port: 1,
    logger: createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} }),
    socketFactory: socketFactory(),
    requestTimeout: 1000,
    connectionTimeout: 1000,
  })
  const fulfilled: Fulfilled[] = []
  const rejected: Error[] = []
  conn.requestQueue = {
    fulfillRequest: (r: Fulfilled) => fulfilled.push({ ...r, payload: Buffer.from(r.payload) }),
    rejectAll: (e: Error) => rejected.push(e),
    waitForPendingRequests: async () => {},
    destroy: () => {},
  }
  return { conn, fulfilled, rejected }
}

/** A response on the wire: size prefix, correlation id, payload. */
function response(correlationId: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(8 + payload.length)
  b.writeInt32BE(4 + payload.length, 0)
  b.writeInt32BE(correlationId, 4)
  payload.copy(b, 8)
  return b
}

describe('kafkajs receive path (patched)', () => {
  it('reads responses cut anywhere, from a read buffer overwritten after each read', () => {
    const payloads = [randomBytes(70_000), Buffer.alloc(0), randomBytes(3), randomBytes(200_001)]
    const wire = Buffer.concat(payloads.map((p, i) => response(100 + i, p)))
    // Cut points: inside the first size prefix, at every boundary between responses, one byte
    // after it, and at random places; every read lands in the same buffer, as with onread.
    const cuts = new Set([1, 2, 3, 5, wire.length - 1])
    let at = 0
    for (const p of payloads) {
      at += 8 + p.length
      cuts.add(at)
      cuts.add(at + 1)
      cuts.add(at + 2)
    }
    for (let i = 0; i < 40; i++) cuts.add(1 + Math.floor(Math.random() * (wire.length - 1)))
    const points = [...cuts].filter((c) => c > 0 && c < wire.length).sort((a, b) => a - b)
    const { conn, fulfilled, rejected } = connection()
    const readBuffer = Buffer.alloc(wire.length)
    let from = 0
    for (const to of [...points, wire.length]) {
      wire.copy(readBuffer, 0, from, to)
      conn.processData(readBuffer.subarray(0, to - from))
      readBuffer.fill(0xee) // the next read overwrites what this one held
      from = to
    }
    assert.deepEqual(rejected, [])
    assert.deepEqual(
      fulfilled.map((f) => f.correlationId),
      payloads.map((_, i) => 100 + i),
    )
    for (const [i, f] of fulfilled.entries()) {
      assert.equal(f.size, 4 + payloads[i]!.length)
      assert.ok(f.payload.equals(payloads[i]!), `payload ${i} differs`)
    }
  })

  it('refuses a response size that cannot hold a correlation id: pending requests fail', () => {
    for (const size of [-5, 0, 3]) {
      const { conn, fulfilled, rejected } = connection()
      const bad = Buffer.alloc(8)
      bad.writeInt32BE(size, 0)
      conn.processData(bad)
      assert.deepEqual(fulfilled, [])
      assert.equal(rejected.length, 1)
      assert.match(rejected[0]!.message, new RegExp(`Invalid response size ${size}`))
    }
  })

  it('a plain TCP socket from the factory reads into one buffer and delivers every byte', async () => {
    const sent = randomBytes(1_500_000)
    const server = createServer((s) => s.end(sent))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    try {
      const copies: Buffer[] = []
      const socket = socketFactory()({ host: '127.0.0.1', port, onConnect: () => {} })
      let reads = 0
      const memory = new Set<ArrayBufferLike>()
      socket.on('data', (d: Buffer) => {
        reads++
        memory.add(d.buffer)
        copies.push(Buffer.from(d)) // the factory's reads share one buffer: copy at once
      })
      await new Promise((r) => socket.on('end', r))
      socket.destroy()
      assert.ok(Buffer.concat(copies).equals(sent))
      assert.ok(reads > 1, 'the peer sent more than one read buffer holds')
      assert.equal(memory.size, 1, "every read lands in the socket's one read buffer")
    } finally {
      server.close()
    }
  })
})
