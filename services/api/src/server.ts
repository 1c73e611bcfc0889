// Listens: the API built by app.ts on a Node HTTP server.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Api } from './app.ts'
import { consoleHandler } from './console.ts'

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
  /** The console's built files (default: services/console/dist); false: no console. */
  console?: string | false
}): Promise<ApiServer> {
  const api = options.api
  const serveConsole =
    options.console === false ? undefined : consoleHandler(options.console ?? undefined)
  const server = createServer(
    serveConsole ? (req, res) => serveConsole(req, res, () => api(req, res)) : api,
  )
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
