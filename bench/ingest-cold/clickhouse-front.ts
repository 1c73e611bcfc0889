// A ClickHouse server's HTTP interface for the cold-start bench, over chDB in this process: the
// machine has no ClickHouse server binary, and a deployed function's store is a server that is
// already running when the function starts cold. It speaks what @clickhouse/client sends:
// `POST /?query=INSERT INTO t FORMAT F` with the rows as the body (settings as URL parameters),
// and a statement as the body otherwise. Bench-only: no authentication, no sessions.
import { createServer, type Server } from 'node:http'

type ChdbModule = typeof import('chdb')
type Session = InstanceType<ChdbModule['Session']>

/** Parameters that are the protocol's, not ClickHouse settings. */
const PROTOCOL = new Set(['query', 'database', 'query_id', 'session_id', 'default_format'])

export async function startClickHouseFront(
  dataDir: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const chdb: ChdbModule = await import('chdb')
  const session: Session = new chdb.Session(dataDir, {
    connectionArgs: ['--output_format_json_quote_64bit_integers=1'],
  })
  let tail: Promise<unknown> = Promise.resolve()
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = tail.then(run)
    tail = next.catch(() => undefined)
    return next
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://front')
      const body = Buffer.concat(chunks)
      const settings: Record<string, string> = {}
      for (const [k, v] of url.searchParams) if (!PROTOCOL.has(k)) settings[k] = v
      const query = url.searchParams.get('query')
      const run = async (): Promise<Buffer> => {
        if (query) {
          const m = /^INSERT INTO\s+(\S+)\s+FORMAT\s+(\w+)\s*$/i.exec(query.trim())
          if (!m) throw new Error(`unsupported query parameter: ${query}`)
          await session.insert({
            table: m[1]!,
            values: body,
            format: m[2]! as 'JSONEachRow',
            settings,
          })
          return Buffer.alloc(0)
        }
        const result = await session.queryAsync(body.toString('utf8'))
        return Buffer.from(result.bytes())
      }
      serial(run).then(
        (out) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(out),
        (err: Error) => {
          const code = (err as { clickhouseCode?: number }).clickhouseCode ?? 1000
          res
            .writeHead(500, { 'x-clickhouse-exception-code': String(code) })
            .end(`Code: ${code}. DB::Exception: ${err.message}`)
        },
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve))
      await tail
      session.close()
      await chdb.drainPending()
    },
  }
}
