// The collector's whole use of the Kubernetes API: GET of one path, as a list (one JSON body)
// or as a watch (a stream of JSON lines), with the kubeconfig's or the in-cluster service
// account's credentials. It replaces @kubernetes/client-node at run time because that package
// cannot be loaded in part: its KubeConfig alone pulls in every generated API model, ~80 MiB of
// resident memory per node for two GET requests (bench/RESULTS.md, "collector cost"). The
// package's types (V1Pod) are still used, at compile time only.
//
// Credentials handled, as client-go reads them: the current context's cluster (server,
// certificate-authority[-data], insecure-skip-tls-verify, tls-server-name) and user (token,
// tokenFile, client-certificate[-data] + client-key[-data], username + password, exec
// credential plugins); the in-cluster service account (its token file is read again before
// each request: kubelet rotates it). `auth-provider` (removed from kubectl in 1.26) is refused
// with a clear error.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { dirname, isAbsolute, resolve } from 'node:path'
import { EbbflowError } from '@ebbflow/common'
import { parse as parseYaml } from 'yaml'

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export class KubeConfigError extends EbbflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KUBECONFIG_INVALID', message, { retriable: false, ...options })
  }
}

/** A failed request: `status` is the HTTP status (0 when none came back). */
export class KubeRequestError extends EbbflowError {
  readonly status: number
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super('KUBE_REQUEST_FAILED', message, {
      retriable: status !== 401 && status !== 403,
      ...options,
    })
    this.status = status
  }
}

interface ExecConfig {
  command: string
  args?: string[]
  env?: { name: string; value: string }[]
  apiVersion?: string
}

interface Credentials {
  token?: string
  cert?: Buffer
  key?: Buffer
  /** Until when the credentials hold (ms since epoch); undefined: for good. */
  expiresAt?: number
}

export interface KubeAccess {
  server: URL
  ca?: Buffer
  insecure: boolean
  serverName?: string
  /** Fixed credentials (token, client certificate, basic auth). */
  token?: string
  tokenFile?: string
  basic?: string
  cert?: Buffer
  key?: Buffer
  exec?: ExecConfig
}

// biome-ignore lint/suspicious/noExplicitAny: a kubeconfig is untyped YAML until checked here
type Obj = Record<string, any>

function named(list: unknown, name: string, what: string, file: string): Obj {
  const entry = Array.isArray(list)
    ? (list as Obj[]).find((e) => e && typeof e === 'object' && e.name === name)
    : undefined
  if (!entry) throw new KubeConfigError(`${file}: no ${what} named ${JSON.stringify(name)}`)
  return entry
}

/** Reads a kubeconfig file (YAML or JSON) into what a request needs; throws KubeConfigError. */
export function loadKubeconfig(file: string): KubeAccess {
  let doc: Obj
  try {
    doc = parseYaml(readFileSync(file, 'utf8')) as Obj
  } catch (err) {
    throw new KubeConfigError(`${file}: not a readable kubeconfig: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (!doc || typeof doc !== 'object') throw new KubeConfigError(`${file}: empty kubeconfig`)
  const current = doc['current-context']
  if (typeof current !== 'string' || current === '')
    throw new KubeConfigError(`${file}: no current-context`)
  const context = named(doc.contexts, current, 'context', file).context ?? {}
  const cluster = named(doc.clusters, context.cluster, 'cluster', file).cluster ?? {}
  const user = context.user ? (named(doc.users, context.user, 'user', file).user ?? {}) : {}
  const base = dirname(resolve(file))
  const fileOrData = (obj: Obj, fileKey: string, dataKey: string): Buffer | undefined => {
    if (obj[dataKey]) return Buffer.from(String(obj[dataKey]), 'base64')
    if (!obj[fileKey]) return undefined
    const p = String(obj[fileKey])
    try {
      return readFileSync(isAbsolute(p) ? p : resolve(base, p))
    } catch (err) {
      throw new KubeConfigError(`${file}: ${fileKey} ${p}: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  let server: URL
  try {
    server = new URL(String(cluster.server))
  } catch (err) {
    throw new KubeConfigError(`${file}: cluster ${context.cluster} has no valid server`, {
      cause: err,
    })
  }
  if (user['auth-provider'])
    throw new KubeConfigError(
      `${file}: user ${context.user} uses auth-provider, which kubectl removed in 1.26; use an exec credential plugin or a token`,
    )
  const access: KubeAccess = { server, insecure: cluster['insecure-skip-tls-verify'] === true }
  const ca = fileOrData(cluster, 'certificate-authority', 'certificate-authority-data')
  if (ca) access.ca = ca
  if (cluster['tls-server-name']) access.serverName = String(cluster['tls-server-name'])
  if (user.token) access.token = String(user.token)
  else if (user.tokenFile)
    access.tokenFile = isAbsolute(user.tokenFile) ? user.tokenFile : resolve(base, user.tokenFile)
  else if (user.username !== undefined)
    access.basic = Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')
  const cert = fileOrData(user, 'client-certificate', 'client-certificate-data')
  const key = fileOrData(user, 'client-key', 'client-key-data')
  if (cert && key) {
    access.cert = cert
    access.key = key
  } else if (cert || key) {
    throw new KubeConfigError(`${file}: user ${context.user} has a client certificate or key alone`)
  }
  if (user.exec) {
    if (!user.exec.command)
      throw new KubeConfigError(`${file}: user ${context.user}: exec without a command`)
    access.exec = user.exec as ExecConfig
  }
  return access
}

/** The in-cluster service account: the API server from the environment, its CA and token file. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT ?? '443'
  if (!host) throw new KubeConfigError('in cluster: KUBERNETES_SERVICE_HOST is not set')
  const ip6 = host.includes(':') ? `[${host}]` : host
  let ca: Buffer | undefined
  try {
    ca = readFileSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`)
  } catch {
    // Without the CA file the system's roots apply, as in client-go.
  }
  return {
    server: new URL(`https://${ip6}:${port}`),
    insecure: false,
    tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
    ...(ca ? { ca } : {}),
  }
}

export interface GetOptions {
  query?: Record<string, string>
  signal?: AbortSignal
}

/** GET requests against one API server, with one kept-alive connection pool. */
export class KubeClient {
  private readonly access: KubeAccess
  private readonly agent: HttpAgent | HttpsAgent
  private execCreds: Credentials | undefined
  private execAgent: HttpsAgent | undefined

  constructor(access: KubeAccess) {
    this.access = access
    this.agent = this.makeAgent(access.cert, access.key)
  }

  get server(): URL {
    return this.access.server
  }

  private makeAgent(cert: Buffer | undefined, key: Buffer | undefined): HttpAgent | HttpsAgent {
    if (this.access.server.protocol === 'http:') return new HttpAgent({ keepAlive: true })
    return new HttpsAgent({
      keepAlive: true,
      rejectUnauthorized: !this.access.insecure,
      ...(this.access.ca ? { ca: this.access.ca } : {}),
      ...(this.access.serverName ? { servername: this.access.serverName } : {}),
      ...(cert && key ? { cert, key } : {}),
    })
  }

  /** The response of GET `path`, once its status is 200; any other status is a KubeRequestError. */
  async get(path: string, options: GetOptions = {}): Promise<IncomingMessage> {
    const url = new URL(path, this.access.server)
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v)
    const headers: Record<string, string> = { accept: 'application/json' }
    let agent = this.agent
    const a = this.access
    if (a.token) headers.authorization = `Bearer ${a.token}`
    else if (a.tokenFile) headers.authorization = `Bearer ${readToken(a.tokenFile)}`
    else if (a.basic) headers.authorization = `Basic ${a.basic}`
    if (a.exec) {
      const creds = await this.execCredentials()
      if (creds.token) headers.authorization = `Bearer ${creds.token}`
      if (this.execAgent) agent = this.execAgent
    }
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest
    const res = await new Promise<IncomingMessage>((resolveRes, reject) => {
      const req = send(url, {
        method: 'GET',
        headers,
        agent,
        ...(options.signal ? { signal: options.signal } : {}),
      })
      req.once('response', resolveRes)
      req.once('error', (err) =>
        reject(new KubeRequestError(0, `GET ${url.pathname}: ${err.message}`, { cause: err })),
      )
      req.end()
    })
    if (res.statusCode === 200) return res
    const body = await readBody(res).catch(() => '')
    if (res.statusCode === 401 && a.exec) this.execCreds = undefined
    throw new KubeRequestError(
      res.statusCode ?? 0,
      `GET ${url.pathname}: ${res.statusCode} ${statusMessage(body) ?? res.statusMessage ?? ''}`.trim(),
    )
  }

  /** GET `path` as one JSON document. */
  async getJson<T>(path: string, options: GetOptions = {}): Promise<T> {
    const res = await this.get(path, options)
    const text = await readBody(res)
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new KubeRequestError(200, `GET ${path}: the body is not JSON`, { cause: err })
    }
  }

  close(): void {
    this.agent.destroy()
    this.execAgent?.destroy()
  }

  /** Runs the exec plugin when there are no credentials yet or they expired. */
  private async execCredentials(): Promise<Credentials> {
    const now = Date.now()
    const cached = this.execCreds
    if (cached && (cached.expiresAt === undefined || cached.expiresAt - 10_000 > now)) return cached
    const exec = this.access.exec!
    const env = { ...process.env }
    for (const e of exec.env ?? []) env[e.name] = e.value
    const stdout = await new Promise<string>((resolveOut, reject) => {
      execFile(exec.command, exec.args ?? [], { env, timeout: 30_000 }, (err, out) =>
        err
          ? reject(
              new KubeRequestError(0, `exec credential plugin ${exec.command}: ${err.message}`, {
                cause: err,
              }),
            )
          : resolveOut(out),
      )
    })
    let status: Obj
    try {
      status = (JSON.parse(stdout) as Obj).status ?? {}
    } catch (err) {
      throw new KubeRequestError(0, `exec credential plugin ${exec.command}: output is not JSON`, {
        cause: err,
      })
    }
    const creds: Credentials = {}
    if (status.token) creds.token = String(status.token)
    if (status.clientCertificateData && status.clientKeyData) {
      creds.cert = Buffer.from(String(status.clientCertificateData))
      creds.key = Buffer.from(String(status.clientKeyData))
      this.execAgent?.destroy()
      this.execAgent = this.makeAgent(creds.cert, creds.key) as HttpsAgent
    }
    if (status.expirationTimestamp) creds.expiresAt = Date.parse(String(status.expirationTimestamp))
    this.execCreds = creds
    return creds
  }
}

function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (err) {
    throw new KubeRequestError(0, `reading the token file ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
}

/** Bodies of errors and lists; a list of a node's pods is a few MiB at most. */
export async function readBody(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8')
  let text = ''
  for await (const chunk of res) text += chunk
  return text
}

function statusMessage(body: string): string | undefined {
  try {
    const s = JSON.parse(body) as Obj
    return typeof s.message === 'string' ? s.message : undefined
  } catch {
    return body.slice(0, 200) || undefined
  }
}
