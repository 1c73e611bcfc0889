// One /metrics endpoint for every service that keeps a prom-client registry. It takes the
// registry's shape, not prom-client itself, so the collector's package graph gains nothing.
import { createServer, type Server } from 'node:http'

/** What the endpoint needs of a prom-client `Registry`. */
export interface MetricsRegistry {
  metrics(): Promise<string>
  readonly contentType: string
}

/** Serves the registry at /metrics on host:port (0: any free port); 404 for any other path. */
export async function serveMetrics(
  registry: MetricsRegistry,
  port: number,
  host = '127.0.0.1',
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const address = server.address()
  return { server, port: typeof address === 'object' && address ? address.port : port }
}
