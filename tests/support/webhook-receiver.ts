// A local webhook receiver for the alerting tests: records every JSON POST it gets, answers
// 503 while `down`, and lets a test wait on what arrived (with a deadline, not a sleep).
import { createServer, type Server } from 'node:http'

export interface Received {
  at: number
  path: string
  headers: Record<string, string | string[] | undefined>
  // biome-ignore lint/suspicious/noExplicitAny: payloads are checked field by field
  body: any
}

export class WebhookReceiver {
  readonly received: Received[] = []
  /** Answer 503 (and record nothing) while set. */
  down = false
  refused = 0
  private server: Server | undefined
  url = ''

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (this.down) {
          this.refused++
          res.writeHead(503).end('down')
          return
        }
        const text = Buffer.concat(chunks).toString('utf8')
        this.received.push({
          at: Date.now(),
          path: req.url ?? '/',
          headers: req.headers,
          body: text ? JSON.parse(text) : undefined,
        })
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    const address = this.server.address()
    if (!address || typeof address === 'string') throw new Error('receiver has no port')
    this.url = `http://127.0.0.1:${address.port}/hook`
    return this
  }

  /** Waits until `predicate` holds over what arrived, or fails after `timeoutMs`. */
  async waitFor(
    predicate: (received: readonly Received[]) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this.received)) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.received.map((r) => r.body)).slice(0, 2000)}`,
        )
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    )
  }
}
