import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type LiveEvent, liveMatches, livePayload, MemoryLiveSource } from '../../src/live.ts'
import type { EventFilter, Scope } from '../../src/sql.ts'

const SEC = 1_000_000_000n
const T0 = 1_700_000_000n * SEC

const live: LiveEvent = {
  kind: 'tcp',
  timeNs: T0,
  tcp: 'connect',
  role: 'active',
  cgroupId: 1,
  sockId: 1,
  pid: 1,
  comm: 'curl',
  netnsIno: 1,
  family: 4,
  saddr: '10.0.0.1',
  daddr: '10.0.0.2',
  sport: 1,
  dport: 2,
  durationNs: 0,
  bytesSent: 0,
  bytesReceived: 0,
  meta: {
    node: 'n1',
    namespace: 'shop',
    pod: 'web-1',
    container: 'web',
    function: 'f',
    labels: { app: 'web' },
  },
}
const shop: Scope = { all: false, namespaces: ['shop'] }

describe('liveMatches', () => {
  const cases: [string, EventFilter, Scope, string[] | undefined, boolean][] = [
    ['no filter', {}, shop, undefined, true],
    ['other scope', {}, { all: false, namespaces: ['bank'] }, undefined, false],
    ['empty scope', {}, { all: false, namespaces: [] }, undefined, false],
    ['all scope', {}, { all: true, namespaces: [] }, undefined, true],
    ['family net', {}, shop, ['net'], true],
    ['family exec', {}, shop, ['exec'], false],
    ['pod', { pod: 'web-1' }, shop, undefined, true],
    ['other pod', { pod: 'web-2' }, shop, undefined, false],
    [
      'container, function, node',
      { container: 'web', function: 'f', node: 'n1' },
      shop,
      undefined,
      true,
    ],
    ['label', { labels: [{ key: 'app', value: 'web' }] }, shop, undefined, true],
    ['label present', { labels: [{ key: 'app' }] }, shop, undefined, true],
    ['label missing', { labels: [{ key: 'tier' }] }, shop, undefined, false],
    ['from before', { from: '2023-11-14 22:13:20.000000000' }, shop, undefined, true],
    ['from after', { from: '2023-11-14 22:13:20.000000001' }, shop, undefined, false],
    ['to is exclusive', { to: '2023-11-14 22:13:20.000000000' }, shop, undefined, false],
  ]
  for (const [name, filter, scope, families, want] of cases)
    it(name, () => {
      assert.equal(liveMatches(live, filter, scope, families as never), want)
    })

  it('leaves out events without a time when a window is asked for', () => {
    assert.equal(
      liveMatches(
        { ...live, timeNs: 0n },
        { from: '2000-01-01 00:00:00.000000000' },
        shop,
        undefined,
      ),
      false,
    )
  })

  it('never passes drops (they have no namespace or family)', () => {
    const drops: LiveEvent = {
      kind: 'drops',
      timeNs: T0,
      family: 'exec',
      reason: 'buffer_full',
      count: 1,
    }
    assert.equal(liveMatches(drops, {}, { all: true, namespaces: [] }, undefined), false)
  })
})

describe('livePayload', () => {
  it('lifts the time and the pod columns, keeps the rest as data, the IP version as ipVersion', () => {
    assert.deepEqual(livePayload(live), {
      family: 'NET',
      kind: 'tcp',
      time: '2023-11-14 22:13:20.000000000',
      node: 'n1',
      namespace: 'shop',
      pod: 'web-1',
      container: 'web',
      function: 'f',
      data: {
        kind: 'tcp',
        tcp: 'connect',
        role: 'active',
        cgroupId: 1,
        sockId: 1,
        pid: 1,
        comm: 'curl',
        netnsIno: 1,
        ipVersion: 4,
        saddr: '10.0.0.1',
        daddr: '10.0.0.2',
        sport: 1,
        dport: 2,
        durationNs: 0,
        bytesSent: 0,
        bytesReceived: 0,
      },
    })
  })
})

describe('MemoryLiveSource', () => {
  it('delivers to each subscriber, drops the oldest past the buffer, ends on close', async () => {
    const source = new MemoryLiveSource(2)
    const a = source.subscribe()[Symbol.asyncIterator]()
    const b = source.subscribe()[Symbol.asyncIterator]()
    assert.equal(source.subscriberCount, 2)
    // 1, 2, 3 into a buffer of 2: 1 slid out, for each subscriber.
    for (const n of [1n, 2n, 3n]) source.publish({ ...live, timeNs: n })
    assert.equal(source.dropped, 2)
    assert.equal((await a.next()).value.timeNs, 2n)
    await b.return!()
    assert.equal(source.subscriberCount, 1)
    assert.equal((await a.next()).value.timeNs, 3n)
    const pending = a.next()
    source.close()
    assert.deepEqual(await pending, { done: true, value: undefined })
  })

  it('returns a subscriber waiting on a quiet stream at once', async () => {
    const source = new MemoryLiveSource(2)
    const it = source.subscribe()[Symbol.asyncIterator]()
    const pending = it.next()
    await it.return!()
    assert.deepEqual(await pending, { done: true, value: undefined })
    assert.equal(source.subscriberCount, 0)
  })
})
