// The console's static files on the API's own port: headers, caching, what goes on to GraphQL,
// and a page that says how to build the console when it was not built.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import type { Store } from '@ebbflow/store'
import { createApi } from '../../src/app.ts'
import { CONTENT_SECURITY_POLICY } from '../../src/console.ts'
import { type ApiServer, startApiServer } from '../../src/server.ts'

// Serving files never reaches the store; `{ __typename }` does not either.
const store = {} as Store
const api = () =>
  createApi({ store, tokens: {}, open: true, logger: createLogger('console-test', 'silent') })

describe('the console served by the API', { timeout: 30_000 }, () => {
  let dir: string
  let server: ApiServer
  let missing: ApiServer
  let base: string
  const INDEX =
    '<!doctype html><title>console</title><script type="module" src="/assets/app-AB12.js"></script>'
  const SCRIPT = 'document.title = "ebbflow"\n'

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-console-files-'))
    mkdirSync(join(dir, 'assets'))
    writeFileSync(join(dir, 'index.html'), INDEX)
    writeFileSync(join(dir, 'assets/app-AB12.js'), SCRIPT)
    server = await startApiServer({ api: api(), port: 0, host: '127.0.0.1', console: dir })
    missing = await startApiServer({
      api: api(),
      port: 0,
      host: '127.0.0.1',
      console: join(dir, 'not-built'),
    })
    base = server.consoleUrl!.replace(/\/$/, '')
  })
  after(async () => {
    await server?.close()
    await missing?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('serves index.html at / with a self-only policy, revalidated on every load', async () => {
    assert.equal(server.consoleUrl, server.url.replace(/graphql$/, ''))
    const res = await fetch(`${base}/`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), INDEX)
    assert.match(res.headers.get('content-type')!, /^text\/html/)
    assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY)
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/)
    assert.equal(res.headers.get('cache-control'), 'no-cache')
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    const again = await fetch(`${base}/`, {
      headers: { 'if-none-match': res.headers.get('etag')! },
    })
    assert.equal(again.status, 304)
  })

  it('serves hashed assets cacheable for good; an unknown asset is 404', async () => {
    const res = await fetch(`${base}/assets/app-AB12.js`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), SCRIPT)
    assert.match(res.headers.get('content-type')!, /javascript/)
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    const head = await fetch(`${base}/assets/app-AB12.js`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(SCRIPT)))
    assert.equal((await fetch(`${base}/assets/nope-1234.js`)).status, 404)
    assert.equal((await fetch(`${base}/assets/..%2findex.html`)).status, 404)
  })

  it('a rebuild is served without a restart', async () => {
    const rebuilt = INDEX.replace('AB12', 'CD34')
    writeFileSync(join(dir, 'assets/app-CD34.js'), SCRIPT)
    writeFileSync(join(dir, 'index.html'), rebuilt)
    assert.equal(await (await fetch(`${base}/`)).text(), rebuilt)
    assert.equal((await fetch(`${base}/assets/app-CD34.js`)).status, 200)
  })

  it('leaves /graphql, other paths and other methods to the GraphQL server', async () => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    })
    assert.deepEqual(await res.json(), { data: { __typename: 'Query' } })
    assert.equal((await fetch(`${base}/elsewhere`)).status, 404)
    assert.equal((await fetch(`${base}/`, { method: 'POST', body: '{}' })).status, 404)
  })

  it('says how to build the console when it was not built', async () => {
    const res = await fetch(missing.consoleUrl!)
    assert.equal(res.status, 503)
    assert.match(await res.text(), /not built.*scripts\/setup\.sh/s)
  })
})
