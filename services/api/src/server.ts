// Listens: the API built by app.ts on a Node HTTP server.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Api } from './app.ts'
import { consoleHandler } from './console.ts'
import { DEFAULT_MAX_BODY_BYTES, type GuardOptions, httpGuard } from './guard.ts'

export interface ApiServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string
  /** The web console, e.g. http://127.0.0.1:4000/ (absent when not served). */
  consoleUrl?: string
  close(): Promise<void>
}

export async function startApiServer(options: {
  api: Api
  /** 0 picks a free port. */
  port: number
  host: string
  /** Host names and the body limit (see guard.ts). Default: loopback names, 1 MB. */
  guard?: Partial<Pick<GuardOptions, 'allowedHosts' | 'maxBodyBytes'>>
  /** The console's built files (default: services/console/dist); false: no console. */
  console?: string | false
}): Promise<ApiServer> {
  const guard = httpGuard(
    {
      corsOrigins: [],
      allowedHosts: options.guard?.allowedHosts ?? [],
      maxBodyBytes: options.guard?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    },
    options.host,
    () => (server.address() as AddressInfo).port,
  )
  const api = options.api
  const serveConsole =
    options.console === false ? undefined : consoleHandler(options.console ?? undefined)
  // The guard (Host header, body size) comes first, for the console's files as for GraphQL.
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    if (serveConsole) serveConsole(req, res, () => api(req, res))
    else void api(req, res)
  }
  const server = createServer((req, res) => {
    if (guard(req, res)) return
    serve(req, res)
  })
  // A client that asks before uploading (`Expect: 100-continue`: curl does for bodies over
  // 1 MB) is told to go on only when the guard lets the request through; a refused one gets
  // its answer instead of "100 Continue" and never sends its body. Node's default sends the
  // 100 before any handler sees the headers.
  server.on('checkContinue', (req, res) => {
    if (guard(req, res)) return
    res.writeContinue()
    serve(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  return {
    url: `http://${host}:${port}${options.api.graphqlEndpoint}`,
    ...(serveConsole ? { consoleUrl: `http://${host}:${port}/` } : {}),
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Server-sent event streams stay open; end them so close() does not wait forever.
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      }),
  }
}
