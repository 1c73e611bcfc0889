// The record batch checksum kafkajs computes for every produce request, as patched
// (patches/kafkajs+2.2.4.patch): native CRC-32C from @node-rs/crc32, the JavaScript table loop
// only where that package is missing. The broker checks this checksum on every batch, so every
// test that produces to the real broker checks it too; this one pins the value on its own.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'

const require = createRequire(import.meta.url)
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js')
const tableLoop: (
  b: Buffer,
) => number = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js')

describe('kafkajs record batch CRC-32C', () => {
  it('is the native one here', () => {
    assert.equal(crc32C.implementation, 'native')
  })

  it("gives CRC-32C's check value and the table loop's value, unsigned", () => {
    // RFC 3720 B.4 / the CRC catalogue's check value of "123456789" for CRC-32C.
    assert.equal(crc32C(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32C(Buffer.alloc(0)), 0)
    assert.equal(crc32C(Buffer.alloc(32)), 0x8a9136aa) // RFC 3720 B.4: 32 bytes of zeros
    for (const n of [1, 7, 8, 63, 4096, 100_003]) {
      const b = randomBytes(n)
      const want = tableLoop(b) >>> 0
      assert.equal(crc32C(b), want, `${n} bytes`)
      assert.ok(crc32C(b) >= 0)
    }
    // A view into a larger buffer is checksummed over its own bytes only.
    const big = randomBytes(1000)
    const view = big.subarray(100, 600)
    assert.equal(crc32C(view), tableLoop(Buffer.from(view)) >>> 0)
  })
})
