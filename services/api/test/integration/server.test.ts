// The API on a real socket (port 0): GraphQL over HTTP, and the events subscription over SSE.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import type { ChdbStore } from '@ebbflow/store'
import { readSseData } from '../../../../tests/support/sse.ts'
import { createApi } from '../../src/app.ts'
import { type LiveEvent, MemoryLiveSource } from '../../src/live.ts'
import { type ApiServer, startApiServer } from '../../src/server.ts'
import { BASE_NS, iso } from '../fixture.ts'
import { type Harness, openHarness, TOKEN_MAP, TOKENS } from '../harness.ts'

let h: Harness
let server: ApiServer
const live = new MemoryLiveSource()

before(async () => {
  h = await openHarness()
  const api = createApi({
    store: h.store as ChdbStore,
    tokens: TOKEN_MAP,
    live,
    logger: createLogger('api-test', 'silent'),
  })
  server = await startApiServer({ api, port: 0, host: '127.0.0.1' })
})
after(async () => {
  live.close()
  await server.close()
  await h.close()
})

function exec(
  namespace: string,
  pod: string,
  comm: string,
  labels: Record<string, string> = {},
  timeNs = 0n,
): LiveEvent {
  return {
    kind: 'exec',
    timeNs,
    cgroupId: 1,
    pid: 7,
    tgid: 7,
    ppid: 1,
    uid: 0,
    gid: 0,
    pidnsIno: 1,
    mntnsIno: 1,
    comm,
    parentComm: 'sh',
    filename: `/bin/${comm}`,
    args: [comm],
    argsTotalBytes: comm.length + 1,
    argsTruncated: false,
    filenameTruncated: false,
    argsReadFailed: false,
    meta: { node: 'node-a', namespace, pod, container: 'c', labels },
  }
}

describe('HTTP server', () => {
  it('listens on a free port and answers GraphQL', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/graphql$/)
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.shop}` },
      body: JSON.stringify({ query: '{ syscallCounts(filter: {pod: "db-0"}) { syscall count } }' }),
    })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), {
      data: {
        syscallCounts: [
          { syscall: 'read', count: 60 },
          { syscall: 'fsync', count: 40 },
        ],
      },
    })
  })

  it('answers 401 without a token', async () => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ syscallCounts(filter: {}) { syscall } }' }),
    })
    assert.equal(res.status, 401)
  })
})

describe('events subscription', () => {
  it('streams the events of the token namespaces that pass the filter', async () => {
    const controller = new AbortController()
    const res = await fetch(server.url, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${TOKENS.shop}`,
      },
      body: JSON.stringify({
        query: `subscription { events(filter: {labels: [{key: "app", value: "web"}]}, families: [EXEC]) {
          family kind time node namespace pod container data } }`,
      }),
    })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
    // The subscription is registered once the stream has started.
    for (let i = 0; i < 100 && live.subscriberCount === 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    assert.equal(live.subscriberCount, 1)
    live.publish(exec('bank', 'ledger-1', 'steal', { app: 'web' }, BASE_NS))
    live.publish(exec('shop', 'db-0', 'psql', { app: 'db' }))
    live.publish({
      kind: 'traffic',
      timeNs: 0n,
      intervalNs: 1,
      cgroupId: 1,
      direction: 'egress',
      protocol: 6,
      family: 4,
      remoteAddr: '1.1.1.1',
      remotePort: 53,
      localPort: 1,
      packets: 1,
      bytes: 1,
      meta: { node: 'node-a', namespace: 'shop', labels: { app: 'web' } },
    })
    live.publish(exec('shop', 'web-1', 'ls', { app: 'web' }, BASE_NS))
    live.publish(exec('shop', 'web-2', 'cat', { app: 'web' }))
    const events = (await readSseData(res, 2)) as { data: { events: Record<string, unknown> } }[]
    controller.abort()
    // A gone client unsubscribes without waiting for another event.
    for (let i = 0; i < 100 && live.subscriberCount > 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    assert.equal(live.subscriberCount, 0)
    assert.deepEqual(
      events.map((e) => [e.data.events.pod, (e.data.events.data as { comm: string }).comm]),
      [
        ['web-1', 'ls'],
        ['web-2', 'cat'],
      ],
    )
    const first = events[0]!.data.events
    assert.equal(first.family, 'EXEC')
    assert.equal(first.kind, 'exec')
    assert.equal(first.time, iso(0))
    assert.equal(first.namespace, 'shop')
    assert.deepEqual((first.data as { args: string[] }).args, ['ls'])
  })

  it('says so when the server has no live source', async () => {
    const api = createApi({
      store: h.store,
      tokens: TOKEN_MAP,
      logger: createLogger('api-test', 'silent'),
    })
    const res = await api.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TOKENS.shop}`,
      },
      body: JSON.stringify({ query: 'subscription { events(filter: {}) { kind } }' }),
    })
    const body = (await res.json()) as {
      errors: { message: string; extensions: { code: string } }[]
    }
    assert.deepEqual(
      body.errors.map((e) => [e.message, e.extensions.code]),
      [['live events are not enabled on this server', 'UNAVAILABLE']],
    )
  })
})
