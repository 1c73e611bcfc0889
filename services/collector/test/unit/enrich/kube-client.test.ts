// The thin Kubernetes client's credential forms against a real TLS server on 127.0.0.1 with a
// CA and certificates openssl makes for the test: a client certificate checked by the server,
// an exec credential plugin (run once while its token holds), a token file read again per
// request, and every malformed kubeconfig refused with a message naming the problem. The
// bearer-token + CA form runs against the real kube-apiserver in tests/integration.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { TLSSocket } from 'node:tls'
import {
  KubeClient,
  KubeConfigError,
  KubeRequestError,
  loadKubeconfig,
} from '../../../src/enrich/kube-client.ts'

const dir = mkdtempSync(join(tmpdir(), 'ebbflow-kube-client-'))
const path = (name: string) => join(dir, name)
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })

function issue(name: string, cn: string, ext: string) {
  openssl('ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', path(`${name}.key`))
  openssl(
    'req',
    '-new',
    '-key',
    path(`${name}.key`),
    '-subj',
    `/CN=${cn}`,
    '-out',
    path(`${name}.csr`),
  )
  writeFileSync(path(`${name}.ext`), ext)
  openssl(
    'x509',
    '-req',
    '-in',
    path(`${name}.csr`),
    '-CA',
    path('ca.crt'),
    '-CAkey',
    path('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    path(`${name}.ext`),
    '-out',
    path(`${name}.crt`),
  )
}

interface Seen {
  authorization?: string
  clientCn?: string
  url: string
}

let server: Server
let port = 0
const seen: Seen[] = []

before(async () => {
  openssl('ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', path('ca.key'))
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    path('ca.key'),
    '-subj',
    '/CN=test-ca',
    '-days',
    '1',
    '-out',
    path('ca.crt'),
  )
  issue('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  issue('client', 'node-agent', 'extendedKeyUsage=clientAuth\n')
  server = createServer(
    {
      key: readFileSync(path('server.key')),
      cert: readFileSync(path('server.crt')),
      ca: readFileSync(path('ca.crt')),
      requestCert: true,
      rejectUnauthorized: false, // a request without a certificate is answered 401, not cut
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate()
      const s: Seen = { url: req.url ?? '' }
      if (req.headers.authorization) s.authorization = req.headers.authorization
      if ((req.socket as TLSSocket).authorized && peer?.subject)
        s.clientCn = String(peer.subject.CN)
      seen.push(s)
      if (!s.authorization && !s.clientCn) {
        res.writeHead(401, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ kind: 'Status', code: 401, message: 'Unauthorized' }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: '7' }, items: [] }))
    },
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
})

after(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  rmSync(dir, { recursive: true, force: true })
})

function kubeconfig(
  name: string,
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
) {
  const file = path(`${name}.kubeconfig`)
  // YAML, as kubectl writes it; JSON (also YAML) is what the integration tests use.
  const lines = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: c',
    '  cluster:',
    `    server: https://127.0.0.1:${port}`,
    '    certificate-authority: ca.crt',
    ...Object.entries(cluster).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`),
    'users:',
    `- name: u`,
    `  user: ${JSON.stringify(user)}`,
    'contexts:',
    '- name: ctx',
    '  context: {cluster: c, user: u}',
    'current-context: ctx',
  ]
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

async function list(file: string) {
  const client = new KubeClient(loadKubeconfig(file))
  try {
    return await client.getJson<{ metadata: { resourceVersion: string } }>('/api/v1/pods', {
      query: { fieldSelector: 'spec.nodeName=n1' },
    })
  } finally {
    client.close()
  }
}

describe('KubeClient credentials', { timeout: 60_000 }, () => {
  it('a client certificate (files relative to the kubeconfig) is presented and checked', async () => {
    seen.length = 0
    const body = await list(
      kubeconfig('cert', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }),
    )
    assert.equal(body.metadata.resourceVersion, '7')
    assert.equal(seen.length, 1)
    assert.equal(seen[0]!.clientCn, 'node-agent')
    assert.equal(seen[0]!.authorization, undefined)
    assert.equal(seen[0]!.url, '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1')
  })

  it('an exec credential plugin is run once while its token holds', async () => {
    seen.length = 0
    const count = path('exec-count')
    writeFileSync(count, '')
    const script = path('plugin.mjs')
    const expires = new Date(Date.now() + 3_600_000).toISOString()
    writeFileSync(
      script,
      `import { appendFileSync } from 'node:fs'
appendFileSync(${JSON.stringify(count)}, 'x')
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
  status: { token: 'tok-' + process.env.PLUGIN_SUFFIX, expirationTimestamp: ${JSON.stringify(expires)} } }))`,
    )
    const file = kubeconfig('exec', {
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: process.execPath,
        args: [script],
        env: [{ name: 'PLUGIN_SUFFIX', value: 'abc' }],
      },
    })
    const client = new KubeClient(loadKubeconfig(file))
    try {
      await client.getJson('/api/v1/pods')
      await client.getJson('/api/v1/pods')
    } finally {
      client.close()
    }
    assert.deepEqual(
      seen.map((s) => s.authorization),
      ['Bearer tok-abc', 'Bearer tok-abc'],
    )
    assert.equal(readFileSync(count, 'utf8'), 'x', 'the plugin ran once')
  })

  it('a token file is read again before each request (rotated tokens)', async () => {
    seen.length = 0
    writeFileSync(path('token'), 'first\n')
    const client = new KubeClient(loadKubeconfig(kubeconfig('tokenfile', { tokenFile: 'token' })))
    try {
      await client.getJson('/api/v1/pods')
      writeFileSync(path('token'), 'second\n')
      await client.getJson('/api/v1/pods')
    } finally {
      client.close()
    }
    assert.deepEqual(
      seen.map((s) => s.authorization),
      ['Bearer first', 'Bearer second'],
    )
  })

  it('a refused request is a KubeRequestError with the status, not retriable for 401', async () => {
    const err = await list(kubeconfig('none', {})).then(
      () => assert.fail('expected 401'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof KubeRequestError)
    assert.equal(err.status, 401)
    assert.equal(err.retriable, false)
    assert.match(err.message, /401 Unauthorized/)
  })

  it('a server whose certificate the kubeconfig CA does not sign is refused', async () => {
    const file = kubeconfig('wrong-ca', { token: 't' }, { 'certificate-authority-data': '' })
    const text = readFileSync(file, 'utf8').replace('    certificate-authority: ca.crt\n', '')
    writeFileSync(file, text)
    const err = await list(file).then(
      () => assert.fail('expected a TLS error'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof KubeRequestError)
    assert.equal(err.status, 0)
  })
})

describe('loadKubeconfig refuses what it cannot use, naming it', () => {
  const cases: { name: string; text: string; want: RegExp }[] = [
    { name: 'not YAML', text: 'a: [\n', want: /not a readable kubeconfig/ },
    {
      name: 'no current-context',
      text: 'apiVersion: v1\nclusters: []\n',
      want: /no current-context/,
    },
    {
      name: 'a context that is not there',
      text: 'current-context: x\ncontexts: []\n',
      want: /no context named "x"/,
    },
    {
      name: 'auth-provider',
      text: 'current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://k:6443"}}]\nusers: [{name: u, user: {auth-provider: {name: gcp}}}]\n',
      want: /auth-provider/,
    },
    {
      name: 'a client certificate without its key',
      text: 'current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://k:6443"}}]\nusers: [{name: u, user: {client-certificate-data: QUJD}}]\n',
      want: /client certificate or key alone/,
    },
    {
      name: 'a certificate file that is missing',
      text: 'current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "https://k:6443", certificate-authority: nope.crt}}]\n',
      want: /certificate-authority nope\.crt/,
    },
    {
      name: 'no server',
      text: 'current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]\n',
      want: /has no valid server/,
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const file = path(`bad-${c.name.replace(/\W+/g, '-')}.kubeconfig`)
      writeFileSync(file, c.text)
      assert.throws(
        () => loadKubeconfig(file),
        (err: unknown) => err instanceof KubeConfigError && c.want.test(err.message),
      )
    })
  }
})
