// What a web page could make the operator's browser send to the open API: foreign Origins,
// foreign Host headers (DNS rebinding), CSRF-shaped POSTs and GETs, oversized bodies. Each
// request is sent on a real socket with exactly the headers a browser would send.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '@ebbflow/common'
import { createApi } from '../../src/app.ts'
import { type ApiServer, startApiServer } from '../../src/server.ts'
import { type Harness, openHarness, TOKEN_MAP } from '../harness.ts'

let h: Harness
let server: ApiServer
let port: number
const LISTED = 'https://console.example.org'

before(async () => {
  h = await openHarness()
  const api = createApi({
    store: h.store,
    tokens: TOKEN_MAP,
    open: true,
    corsOrigins: [LISTED],
    logger: createLogger('api-test', 'silent'),
  })
  server = await startApiServer({
    api,
    port: 0,
    host: '127.0.0.1',
    guard: { allowedHosts: ['ebbflow.internal', 'proxy.internal:8443'], maxBodyBytes: 64 * 1024 },
  })
  port = Number(new URL(server.url).port)
})
after(async () => {
  await server.close()
  await h.close()
})

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One raw HTTP request to the server's socket; `headers` are sent as given (Host included). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
  to = port,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: to,
        method,
        path,
        headers: { host: `127.0.0.1:${to}`, ...headers },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          text += d
        })
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const QUERY = JSON.stringify({ query: '{ syscallCounts(filter: {}) { syscall } }' })
const json = { 'content-type': 'application/json' }

function code(a: Answer): string | undefined {
  return (JSON.parse(a.body) as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]
    ?.extensions?.code
}

describe('Host header (DNS rebinding)', () => {
  it('answers the listen address, the loopback names and configured names', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
      `ebbflow.internal:${port}`,
      'ebbflow.internal:8080',
      'proxy.internal:8443',
    ]) {
      const a = await send('POST', '/graphql', { ...json, host }, QUERY)
      assert.equal(a.status, 200, `${host}: ${a.body}`)
    }
  })

  it('refuses a foreign name, a wrong port and a missing Host with 403', async () => {
    for (const host of [
      `attacker.example:${port}`,
      `127.0.0.1.attacker.example:${port}`,
      `localhost:${port + 1}`,
      'localhost',
      `ebbflow.internal.evil:${port}`,
      `proxy.internal:${port}`,
    ]) {
      const a = await send('POST', '/graphql', { ...json, host }, QUERY)
      assert.equal(a.status, 403, host)
      assert.equal(code(a), 'FORBIDDEN_HOST')
      assert.match(a.body, /is not this server/)
    }
  })
})

describe('Origin (CORS)', () => {
  it('refuses a foreign Origin with 403 and no CORS headers, preflight included', async () => {
    for (const method of ['POST', 'OPTIONS']) {
      const a = await send(
        method,
        '/graphql',
        {
          ...json,
          origin: 'https://attacker.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
        method === 'POST' ? QUERY : undefined,
      )
      // A preflight without CORS headers fails in the browser, which then sends nothing.
      if (method === 'POST') {
        assert.equal(a.status, 403, method)
        assert.equal(code(a), 'FORBIDDEN_ORIGIN')
      }
      assert.equal(a.headers['access-control-allow-origin'], undefined)
      assert.equal(a.headers['access-control-allow-credentials'], undefined)
    }
    const nullOrigin = await send('POST', '/graphql', { ...json, origin: 'null' }, QUERY)
    assert.equal(nullOrigin.status, 403)
  })

  it('serves its own origin without CORS headers, and a listed origin with them', async () => {
    const own = await send(
      'POST',
      '/graphql',
      { ...json, origin: `http://127.0.0.1:${port}` },
      QUERY,
    )
    assert.equal(own.status, 200)
    assert.equal(own.headers['access-control-allow-origin'], undefined)
    const listed = await send('POST', '/graphql', { ...json, origin: LISTED }, QUERY)
    assert.equal(listed.status, 200)
    assert.equal(listed.headers['access-control-allow-origin'], LISTED)
    assert.equal(listed.headers['access-control-allow-credentials'], 'true')
  })
})

describe('CSRF shapes', () => {
  it('refuses the bodies a form or a no-cors fetch can send with 415, before running them', async () => {
    for (const [type, body] of [
      ['text/plain', QUERY],
      ['text/plain;charset=UTF-8', QUERY],
      [
        'application/x-www-form-urlencoded',
        `query=${encodeURIComponent('{ collectorHealth { node } }')}`,
      ],
      [
        'multipart/form-data; boundary=x',
        `--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ collectorHealth { node } }\r\n--x--\r\n`,
      ],
      ['application/graphql', '{ collectorHealth { node } }'],
    ] as const) {
      const a = await send('POST', '/graphql', { 'content-type': type }, body)
      assert.equal(a.status, 415, type)
      assert.equal(code(a), 'UNSUPPORTED_MEDIA_TYPE')
    }
    const missing = await send('POST', '/graphql', {}, QUERY)
    assert.equal(missing.status, 415)
  })

  it('accepts application/json bodies, answering application/graphql-response+json on request', async () => {
    for (const [type, accept] of [
      ['application/json', 'application/json'],
      ['application/json; charset=utf-8', 'application/graphql-response+json'],
    ] as const) {
      const a = await send('POST', '/graphql', { 'content-type': type, accept }, QUERY)
      assert.equal(a.status, 200, `${type}: ${a.body}`)
      assert.match(String(a.headers['content-type']), new RegExp(accept.replace('+', '\\+')))
      assert.deepEqual(Object.keys(JSON.parse(a.body)), ['data'])
    }
    const graphqlResponseBody = await send(
      'POST',
      '/graphql',
      { 'content-type': 'application/graphql-response+json' },
      QUERY,
    )
    assert.equal(graphqlResponseBody.status, 415, 'an answer type is no body type')
  })

  it('runs a GET query only with a header a foreign page cannot set', async () => {
    const path = `/graphql?query=${encodeURIComponent('{ syscallCounts(filter: {}) { syscall } }')}`
    const plain = await send('GET', path, {})
    assert.equal(plain.status, 403)
    assert.equal(code(plain), 'CSRF_SUSPECTED')
    const crossSite = await send('GET', path, { 'sec-fetch-site': 'cross-site' })
    assert.equal(crossSite.status, 403)
    const trusted: Record<string, string>[] = [
      { 'graphql-require-preflight': '1' },
      { 'sec-fetch-site': 'same-origin' },
    ]
    for (const headers of trusted) {
      const a = await send('GET', path, headers)
      assert.equal(a.status, 200, JSON.stringify(headers))
      assert.ok(
        (JSON.parse(a.body) as { data: { syscallCounts: unknown[] } }).data.syscallCounts.length >
          0,
      )
    }
  })

  it('never runs a subscription or a mutation over GET', async () => {
    const sub = await send(
      'GET',
      `/graphql?query=${encodeURIComponent('subscription { events(filter: {}) { kind } }')}`,
      { 'graphql-require-preflight': '1', accept: 'text/event-stream' },
    )
    assert.equal(sub.status, 405, sub.body)
    assert.match(sub.body, /subscriptions need POST/)
  })
})

describe('body size', () => {
  it('answers 413 from the Content-Length, before reading the body', async () => {
    const a = await send('POST', '/graphql', json, Buffer.alloc(64 * 1024 + 1, 0x20))
    assert.equal(a.status, 413)
    assert.equal(code(a), 'BODY_TOO_LARGE')
    assert.match(a.body, /over the limit of 65536/)
    const fits = JSON.stringify({
      query: `{ syscallCounts(filter: {}) { syscall } }${' '.repeat(60 * 1024)}`,
    })
    assert.equal((await send('POST', '/graphql', json, fits)).status, 200)
  })

  it('reads no more of a refused body: what the kernel does not hold stays with the client', async () => {
    // 32 MB, well over what loopback's socket buffers hold: a server that read and dropped the
    // body would take all of it within milliseconds.
    const body = Buffer.alloc(32 * 1024 * 1024, 0x20)
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      text += d
    })
    socket.on('error', () => {})
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`,
    )
    socket.write(body)
    const deadline = Date.now() + 10_000
    while (!/\r\n\r\n[\s\S]*BODY_TOO_LARGE/.test(text) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20))
    assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 200))
    await new Promise((r) => setTimeout(r, 1000))
    const unsent = socket.writableLength
    socket.destroy()
    assert.ok(
      unsent > 16 * 1024 * 1024,
      `the server took ${body.length - unsent} of ${body.length} bytes of a refused body`,
    )
  })

  it('answers a client that asks before uploading (Expect: 100-continue) without its body', async () => {
    // Raw bytes, so the test sees exactly what the server says before any body is sent.
    const ask = (length: number, body?: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1')
        let text = ''
        let sent = false
        socket.setEncoding('utf8')
        socket.on('data', (d: string) => {
          text += d
          // Told to go on: send the body, as a client does after "100 Continue".
          if (body !== undefined && /^HTTP\/1\.1 100 /.test(text) && !sent) {
            sent = true
            socket.write(body)
          }
        })
        socket.on('end', () => resolve(text))
        socket.on('error', reject)
        socket.write(
          `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        )
      })
    const refused = await ask(10 * 1024 * 1024)
    assert.match(refused, /^HTTP\/1\.1 413 /, refused.slice(0, 200))
    assert.doesNotMatch(refused, /100 Continue/)
    assert.match(refused, /BODY_TOO_LARGE/)
    const accepted = await ask(Buffer.byteLength(QUERY), QUERY)
    assert.match(
      accepted,
      /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /,
      accepted.slice(0, 200),
    )
    assert.match(accepted, /"syscallCounts"/)
  })

  it('answers 411 to a chunked body, whose size is known only once read', async () => {
    const a = await new Promise<Answer>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/graphql', headers: json },
        (res) => {
          let text = ''
          res.on('data', (d) => {
            text += d
          })
          res.on('end', () =>
            resolve({ status: res.statusCode!, headers: res.headers, body: text }),
          )
        },
      )
      req.on('error', reject)
      req.write(QUERY.slice(0, 10))
      req.end(QUERY.slice(10))
    })
    assert.equal(a.status, 411)
  })
})

// The whole `ebbflow api` in a child, so its RSS is its own: eight 20 MB bodies at once.
describe('parallel 20 MB bodies', { timeout: 120_000 }, () => {
  it('leave the server RSS flat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-api-bodies-'))
    const cli = join(import.meta.dirname, '../../../cli/src/main.ts')
    const child = spawn(
      process.execPath,
      [cli, 'api', '--open', 'true', '--port', '0', '--data-dir', dir, '--log-level', 'info'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      out += d
    })
    try {
      const deadline = Date.now() + 60_000
      let url: string | undefined
      while (Date.now() < deadline && url === undefined) {
        url = /"url":"(http:[^"]+)"/.exec(out)?.[1]
        if (url === undefined) await new Promise((r) => setTimeout(r, 50))
      }
      assert.ok(url, `the API started: ${out}`)
      const childPort = Number(new URL(url).port)
      const rss = () =>
        Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) *
        1024
      // Warm: the first query loads what a query needs.
      assert.equal((await send('POST', '/graphql', json, QUERY, childPort)).status, 200)
      const before = rss()
      const mb = Buffer.alloc(1024 * 1024, 0x20)
      const big = () =>
        new Promise<number>((resolve) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: childPort,
              method: 'POST',
              path: '/graphql',
              agent: false,
              headers: { ...json, 'content-length': String(20 * mb.length) },
            },
            (res) => {
              res.resume()
              resolve(res.statusCode!)
            },
          )
          // A reset before the answer counts as no answer (-1), which the test refuses.
          req.on('error', () => resolve(-1))
          let sent = 0
          const pump = () => {
            while (sent < 20) {
              sent++
              if (!req.write(mb)) return void req.once('drain', pump)
            }
            req.end()
          }
          pump()
        })
      const statuses = await Promise.all(Array.from({ length: 8 }, big))
      const afterRss = rss()
      assert.deepEqual(statuses, Array(8).fill(413))
      // Read and parsed, the 160 MB took RSS up by 850 MB (bench/api-bodies.ts); read and
      // dropped chunk by chunk, by 3 to 80 MB from run to run; left unread in the kernel's
      // buffers, by less than 1 MB.
      assert.ok(
        afterRss - before < 32 * 1024 * 1024,
        `RSS grew from ${before} to ${afterRss} bytes`,
      )
      process.stderr.write(
        `# api RSS with 8 parallel 20 MB bodies: ${before} -> ${afterRss} bytes\n`,
      )
      assert.equal((await send('POST', '/graphql', json, QUERY, childPort)).status, 200)
    } finally {
      child.kill('SIGTERM')
      await once(child, 'exit')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
