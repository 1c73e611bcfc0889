// What a browser could be tricked into sending is refused before GraphQL sees it.
//
// The API is open on loopback under `ebbflow up`, so any page the operator visits can aim
// requests at it. Three doors are shut here:
// - DNS rebinding: a name the attacker controls resolves to 127.0.0.1, and the browser calls
//   the page same-origin. The Host header then carries the attacker's name: only the listen
//   address, loopback names and configured names are answered (httpGuard, on the socket).
// - Cross-origin reads: a foreign Origin gets no CORS headers and a 403, unless listed.
// - CSRF shapes a page can send without a preflight: form and text/plain POSTs (415), GETs
//   without a sign that a script of this origin sent them (403), bodies too large (413).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { GraphQLError } from 'graphql'
import type { Plugin } from 'graphql-yoga'

export interface GuardOptions {
  /** Origins (scheme://host[:port]) besides the API's own that may call it from a browser. */
  corsOrigins: readonly string[]
  /** Host names (without port) answered besides the listen address and the loopback names. */
  allowedHosts: readonly string[]
  /** Largest request body, bytes; larger is answered 413 without being parsed or kept. */
  maxBodyBytes: number
}

/** 1 MB: a GraphQL document with its variables is a few kilobytes; nothing needs more. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024

/**
 * The one request media type (GraphQL over HTTP): a browser cannot send it cross-origin
 * without a CORS preflight. Answers come as application/json or, when the Accept header asks,
 * application/graphql-response+json.
 */
const JSON_TYPES = new Set(['application/json'])

/** How long a refused connection stays open, unread, before it is cut (see linger). */
const LINGER_MS = 5000

const WILDCARD = new Set(['0.0.0.0', '::', '[::]'])
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]']

function refusal(code: string, message: string): string {
  return JSON.stringify({ errors: [{ message, extensions: { code } }] })
}

/** An IPv6 address as a Host header writes it. */
function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host
}

/** Splits a Host header into its name (IPv6 in brackets, lower case) and port. */
export function parseHost(header: string): { name: string; port: string } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(header.trim())
  if (!m) return undefined
  return { name: m[1]!.toLowerCase(), port: m[2] ?? '80' }
}

/**
 * Whether a Host header names this server: the loopback names and the listen address at the
 * listen port, or a configured entry (`name` at any port — a proxy or a port-forward may
 * change it — or `name:port`). An IP literal cannot be rebound, so on a wildcard listen
 * address (a pod, a container) every IP literal at the listen port is answered too.
 */
export function hostAllowed(
  header: string | undefined,
  listenHost: string,
  port: number,
  allowedHosts: readonly string[],
): boolean {
  if (header === undefined) return false
  const parsed = parseHost(header)
  if (!parsed) return false
  for (const entry of allowedHosts) {
    const allowed = parseHost(bracketed(entry.toLowerCase()))
    if (!allowed || allowed.name !== parsed.name) continue
    if (!/(^[^:]*|\]):\d+$/.test(entry) || allowed.port === parsed.port) return true
  }
  if (parsed.port !== String(port)) return false
  if (LOOPBACK_NAMES.includes(parsed.name) || parsed.name === bracketed(listenHost.toLowerCase()))
    return true
  if (WILDCARD.has(listenHost)) return isIP(parsed.name.replace(/^\[|\]$/g, '')) !== 0
  return false
}

/**
 * The socket-level half: Host and body size, before any byte of the body is read. Returns
 * true when it answered the request itself.
 */
export function httpGuard(
  options: GuardOptions,
  listenHost: string,
  port: () => number,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const refuse = (status: number, code: string, message: string) => {
      // The answer goes out at once, before any byte of the body is read: waiting for the
      // body first made a 10 MB refusal wait for its upload. The body is never read.
      linger(req)
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' })
      res.end(refusal(code, message))
      return true
    }
    if (!hostAllowed(req.headers.host, listenHost, port(), options.allowedHosts))
      return refuse(
        403,
        'FORBIDDEN_HOST',
        `Host ${JSON.stringify(req.headers.host ?? '')} is not this server: use 127.0.0.1, localhost or [::1] with its port, or add the name to --allowed-hosts (EBBFLOW_API_ALLOWED_HOSTS)`,
      )
    const length = req.headers['content-length']
    if (length !== undefined && Number(length) > options.maxBodyBytes)
      return refuse(
        413,
        'BODY_TOO_LARGE',
        `request body of ${length} bytes is over the limit of ${options.maxBodyBytes} (--max-body-bytes, EBBFLOW_API_MAX_BODY_BYTES)`,
      )
    if (
      length === undefined &&
      req.headers['transfer-encoding'] !== undefined &&
      !isClickHousePath(req.url)
    )
      // A chunked body's size is known only once read; every browser and GraphQL client
      // sends a Content-Length for a query. ClickHouse clients stream their queries chunked:
      // /clickhouse reads its body with its own bound (max_query_size).
      return refuse(411, 'LENGTH_REQUIRED', 'a request body needs a Content-Length header')
    return false
  }
}

/**
 * Keeps a refused connection open for a while after its answer, as a web server's "lingering
 * close" does, without reading any more of its body. Node closes a `connection: close` socket
 * as soon as the answer is written, and closing a socket with unread bytes resets it: a client
 * still writing its body might lose the answer. So the socket only half-closes (FIN after the
 * answer) and stops reading: the unread body stays in the kernel's buffers, TCP holds the
 * client back, and the socket is closed LINGER_MS later, when any client has read its answer
 * (curl and browsers stop sending on an early error; a client that goes on gets a reset then).
 * Not reading the body is what makes a refusal cheap: reading and dropping 10 MB cost the
 * server about 4.6 ms of CPU and, in garbage, a full collection every few refusals, which
 * every other request waited for (bench/RESULTS.md, "graphql-abuse").
 */
function linger(req: IncomingMessage): void {
  const socket = req.socket
  socket.destroySoon = () => {
    socket.end()
    // Node's HTTP parser reads the socket's handle itself, so pausing the stream does not stop
    // it; the handle's readStop does (and Node's own dump of an unread body then reads nothing).
    const handle = (
      socket as unknown as { _handle?: { readStop?: () => number; reading?: boolean } }
    )._handle
    if (handle?.readStop) {
      handle.reading = false
      handle.readStop()
    }
  }
  const cut = setTimeout(() => socket.destroy(), LINGER_MS)
  cut.unref()
  socket.once('close', () => clearTimeout(cut))
  req.on('error', () => socket.destroy())
}

function ownOrigin(request: Request): string[] {
  const host = request.headers.get('host') ?? new URL(request.url).host
  return [`http://${host}`, `https://${host}`]
}

/**
 * The request-level half, a yoga plugin: Origin, media type and GET. It also runs for
 * `api.fetch` (tests, serverless), where there is no socket.
 */
export function requestGuard(options: Pick<GuardOptions, 'corsOrigins'>): Plugin {
  const listed = new Set(options.corsOrigins)
  return {
    onRequest({ request, endResponse }) {
      const refuse = (status: number, code: string, message: string) =>
        endResponse(
          new Response(refusal(code, message), {
            status,
            headers: { 'content-type': 'application/json' },
          }),
        )
      const origin = request.headers.get('origin')
      if (origin !== null && !listed.has(origin) && !ownOrigin(request).includes(origin))
        return refuse(
          403,
          'FORBIDDEN_ORIGIN',
          `Origin ${origin} may not call this API: list it in --cors-origins (EBBFLOW_API_CORS_ORIGINS)`,
        )
      const path = new URL(request.url).pathname
      if (path !== '/graphql') return
      if (request.method === 'POST') {
        const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
        if (!JSON_TYPES.has(type))
          return refuse(
            415,
            'UNSUPPORTED_MEDIA_TYPE',
            `a POST body must be application/json, not ${JSON.stringify(type)}`,
          )
      } else if (request.method === 'GET') {
        // A page can make the browser GET any URL (an <img>, a link) with no Origin header. A
        // script of ours says so: an Authorization header or GraphQL-Require-Preflight cannot
        // be set cross-origin without a preflight, and Sec-Fetch-Site is the browser's own.
        const site = request.headers.get('sec-fetch-site')
        const trusted =
          request.headers.has('authorization') ||
          request.headers.has('graphql-require-preflight') ||
          site === 'same-origin'
        const wantsPage = (request.headers.get('accept') ?? '').includes('text/html')
        if (!trusted && !wantsPage)
          return refuse(
            403,
            'CSRF_SUSPECTED',
            'a GET query needs an Authorization or GraphQL-Require-Preflight header (or use POST with application/json)',
          )
      }
    },
    onSubscribe({ args }) {
      // yoga refuses mutations over GET already; a subscription is a long-lived read that a
      // tag on a foreign page could open, so GET carries queries only.
      const request = (args.contextValue as { request?: Request }).request
      if (request?.method === 'GET')
        throw new GraphQLError('subscriptions need POST (with Accept: text/event-stream)', {
          extensions: { code: 'METHOD_NOT_ALLOWED', http: { status: 405 } },
        })
    },
  }
}

function isClickHousePath(url: string | undefined): boolean {
  return (
    url === '/clickhouse' ||
    url?.startsWith('/clickhouse/') === true ||
    url?.startsWith('/clickhouse?') === true
  )
}
