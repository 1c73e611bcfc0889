// A TCP proxy on 127.0.0.1 that a test can cut and restore: a network partition between one
// client and a server that stays up (the server keeps taking writes from everyone else).
// While cut, open connections are reset and new ones are reset as soon as they arrive.
import { connect, createServer, type Server, type Socket } from 'node:net'

export class CuttableProxy {
  private readonly server: Server
  private readonly open = new Set<Socket>()
  private cutOff = false
  /** Connections accepted while not cut. */
  connections = 0

  private constructor(server: Server) {
    this.server = server
  }

  static async start(target: { host: string; port: number }): Promise<CuttableProxy> {
    const server = createServer()
    const proxy = new CuttableProxy(server)
    server.on('connection', (client) => proxy.accept(client, target))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return proxy
  }

  get port(): number {
    const a = this.server.address()
    if (!a || typeof a !== 'object') throw new Error('the proxy is not listening')
    return a.port
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    if (this.cutOff) {
      client.resetAndDestroy()
      return
    }
    this.connections++
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      this.open.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        this.open.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  }

  /** Resets every connection and refuses new ones until `restore()`. */
  cut(): void {
    this.cutOff = true
    for (const s of this.open) s.resetAndDestroy()
  }

  restore(): void {
    this.cutOff = false
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
