// GraphQL abuse refusals (issue 11), the API's body guard before and after a change, side by
// side in one run: one API over chDB behind two HTTP servers, one with the guard of a git ref
// (`--before`, default main) and one with this tree's; every round sends each of the eight
// shapes (tests/fuzz/graphql-abuse-shapes.ts) once to each server, the order of the two
// alternating round by round. Times as the abuse test takes them: from handing the request
// to the socket to the whole answer read. CPU: the process's user+system time per request
// (client and server share the process, as in the test; the client's share is the same for
// both). For what the socket-level guard answers itself (the 10 MB body), also the server's own
// time from the request's headers to the answer written.
// `--client process` (the default) sends the requests from a child process (client.ts), so the
// server's times and CPU are not the client's; `--client same` keeps client and server in one
// process, as the abuse test does.
// Prints one JSON report and writes it to bench/reports/graphql-abuse.json.
// Usage: node bench/graphql-abuse/main.ts [--rounds N] [--before REF] [--client process|same]
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createApi } from '@ebbflow/api'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'
import {
  DEFAULT_MAX_BODY_BYTES,
  type GuardOptions,
  httpGuard,
} from '../../services/api/src/guard.ts'
import { SHAPES, sendRounds } from '../../tests/fuzz/graphql-abuse-shapes.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '200' },
    before: { type: 'string', default: 'main' },
    client: { type: 'string', default: 'process' },
  },
})
if (values.client !== 'process' && values.client !== 'same')
  throw new Error(`--client must be process or same, not ${values.client}`)
const rounds = Number(values.rounds)
const root = join(import.meta.dirname, '../..')
const TOKEN = 'token-abuse-bench-0123456789'

type Guard = (
  options: GuardOptions,
  host: string,
  port: () => number,
) => (req: IncomingMessage, res: ServerResponse) => boolean

// The older guard, as the ref has it, next to this file so its imports resolve here.
const beforeFile = join(import.meta.dirname, '.guard-before.ts')
writeFileSync(
  beforeFile,
  execFileSync('git', ['show', `${values.before}:services/api/src/guard.ts`], { cwd: root }),
)
const tmp = mkdtempSync(join(tmpdir(), 'ebbflow-abuse-bench-'))
try {
  const before = (await import(beforeFile)) as { httpGuard: Guard }
  const store = await ChdbStore.open(join(tmp, 'data'))
  await migrate(store)
  const api = createApi({
    store,
    tokens: { [TOKEN]: ['*'] },
    logger: createLogger('bench', 'silent'),
  })

  // In the server: from its request's headers to the guard's answer written, for the shape
  // being sent (requests go one at a time). The client's figure also holds its own writing of
  // the body: client and server share this process. (Not from the connection's accept: the
  // client's agent keeps connections alive, so a request may come on an old one.)
  let sending = ''
  const serverTimes = new Map<string, number[]>()
  const listen = async (make: Guard, variant: string) => {
    const guard = make(
      { corsOrigins: [], allowedHosts: [], maxBodyBytes: DEFAULT_MAX_BODY_BYTES },
      '127.0.0.1',
      () => (server.address() as AddressInfo).port,
    )
    const server = createServer((req, res) => {
      const headersAt = performance.now()
      if (!guard(req, res)) {
        void api(req, res)
        return
      }
      const done = performance.now()
      // With the client in another process the server does not know the shape being sent;
      // the guard's own refusals are told apart by their status (only the 10 MB body's is 413).
      const shape =
        values.client === 'same' ? sending : SHAPES.find((s) => s.status === res.statusCode)?.name
      const key = `${shape}|${variant}`
      serverTimes.set(key, [...(serverTimes.get(key) ?? []), done - headersAt])
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql` }
  }
  const variants = {
    before: await listen(before.httpGuard, 'before'),
    after: await listen(httpGuard, 'after'),
  }

  const serverCpu0 = process.cpuUsage()
  const urls = Object.fromEntries(Object.entries(variants).map(([v, x]) => [v, x.url]))
  const sent: Awaited<ReturnType<typeof sendRounds>> =
    values.client === 'process'
      ? JSON.parse(
          await new Promise<string>((resolve, reject) =>
            execFile(
              process.execPath,
              [
                join(import.meta.dirname, 'client.ts'),
                JSON.stringify({ urls, rounds, token: TOKEN }),
              ],
              { maxBuffer: 64 * 1024 * 1024 },
              (err, stdout) => (err ? reject(err) : resolve(stdout)),
            ),
          ),
        )
      : await sendRounds(urls, rounds, TOKEN, (shape) => {
          sending = shape
        })
  const times = new Map(Object.entries(sent.times))
  const cpu = new Map(Object.entries(sent.cpuMs))
  const serverCpu = process.cpuUsage(serverCpu0)
  const pct = (xs: number[], p: number) =>
    xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!
  const report = {
    bench: 'graphql-abuse',
    rounds,
    before: values.before,
    client: values.client,
    // With the client in its own process: the server process's CPU over every request sent
    // (all shapes, both variants), per request.
    ...(values.client === 'process'
      ? {
          serverCpuMsPerRequest: +(
            (serverCpu.user + serverCpu.system) /
            1000 /
            (rounds * SHAPES.length * 2)
          ).toFixed(2),
        }
      : {}),
    loadAverage: loadavg().map((l) => +l.toFixed(2)),
    shapes: Object.fromEntries(
      SHAPES.map((s) => [
        s.name,
        Object.fromEntries(
          (['before', 'after'] as const).map((v) => {
            const xs = [...times.get(`${s.name}|${v}`)!].sort((a, b) => a - b)
            const server = serverTimes.get(`${s.name}|${v}`)
            return [
              v,
              {
                p50: +pct(xs, 50).toFixed(2),
                p99: +pct(xs, 99).toFixed(2),
                max: +xs.at(-1)!.toFixed(2),
                // The client's process alone with --client process; client and server with same.
                cpuMsPerRequest: +(cpu.get(`${s.name}|${v}`)! / xs.length).toFixed(2),
                // Only for the shapes the socket-level guard answers itself.
                ...(server
                  ? {
                      serverFromHeadersMs: {
                        p50: +pct(
                          [...server].sort((a, b) => a - b),
                          50,
                        ).toFixed(3),
                        p99: +pct(
                          [...server].sort((a, b) => a - b),
                          99,
                        ).toFixed(3),
                      },
                    }
                  : {}),
              },
            ]
          }),
        ),
      ]),
    ),
  }
  for (const v of Object.values(variants)) {
    v.server.closeAllConnections()
    v.server.close()
  }
  await store.close()
  const text = `${JSON.stringify(report, null, 2)}\n`
  process.stdout.write(text)
  mkdirSync(join(root, 'bench/reports'), { recursive: true })
  writeFileSync(join(root, 'bench/reports/graphql-abuse.json'), text)
} finally {
  rmSync(beforeFile, { force: true })
  rmSync(tmp, { recursive: true, force: true })
}
