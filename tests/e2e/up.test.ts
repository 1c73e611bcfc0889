// `ebbflow up` as a new user runs it: start it on an empty data folder, run a workload in a
// child cgroup (execs, a TCP exchange, a burst of syscalls), find each through the GraphQL
// API, stop it with SIGTERM, start it again on the same folder and find the history again.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isRoot } from '../support/capture.ts'
import { createCgroup, type TestCgroup } from '../support/cgroup.ts'
import { gql } from '../support/graphql.ts'
import { freePort } from '../support/kafka-broker.ts'

const bin = join(import.meta.dirname, '../../bin/ebbflow')

interface Running {
  child: ChildProcess
  stderr: () => string
  url: string
}

async function startUp(dataDir: string, port: number): Promise<Running> {
  const child = spawn(bin, ['up', '--data-dir', dataDir, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EBBFLOW_COUNTER_INTERVAL_MS: '500', EBBFLOW_LOG_LEVEL: 'info' },
  })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  child.stdout!.resume()
  const deadline = Date.now() + 60_000
  while (!/ebbflow is up/.test(stderr)) {
    if (child.exitCode !== null) throw new Error(`ebbflow up exited ${child.exitCode}: ${stderr}`)
    if (Date.now() > deadline) throw new Error(`ebbflow up did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, stderr: () => stderr, url: `http://127.0.0.1:${port}/graphql` }
}

async function stop(up: Running): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => up.child.once('exit', (c) => resolve(c)))
  up.child.kill('SIGTERM')
  return exited
}

/** Polls `read` until `ok` holds of its result (rows reach the store within a second or so). */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string) {
  const deadline = Date.now() + 20_000
  let last: T = await read()
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 500)}`)
    await new Promise((r) => setTimeout(r, 300))
    last = await read()
  }
  return last
}

const EXECS = `query($from: DateTime!, $after: String) {
  execEvents(filter: { from: $from }, first: 500, after: $after) {
    edges { node { time comm filename args exitCode durationNs pid } }
    pageInfo { hasNextPage endCursor }
  }
}`

async function markedExecs(url: string, from: string, marker: string) {
  const out: {
    time: string
    filename: string
    args: string[]
    exitCode: number | null
    durationNs: number | null
  }[] = []
  let after: string | null = null
  for (;;) {
    const d: {
      execEvents: {
        edges: {
          node: {
            time: string
            filename: string
            args: string[]
            exitCode: number | null
            durationNs: number | null
          }
        }[]
        pageInfo: { hasNextPage: boolean; endCursor: string | null }
      }
    } = await gql(url, EXECS, { from, after })
    for (const e of d.execEvents.edges) if (e.node.args.includes(marker)) out.push(e.node)
    if (!d.execEvents.pageInfo.hasNextPage) return out
    after = d.execEvents.pageInfo.endCursor
  }
}

describe('ebbflow up (as a new user runs it)', {
  skip: isRoot() ? false : 'needs root',
  timeout: 240_000,
}, () => {
  let tmp: string
  let cg: TestCgroup
  let echo: Server
  let echoPort: number

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-up-'))
    cg = createCgroup('up')
    echo = createServer((s) => s.pipe(s))
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    echoPort = (echo.address() as { port: number }).port
  })

  after(async () => {
    echo?.close()
    await cg?.remove()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('without the capabilities it names them, exits non-zero and creates nothing', () => {
    const dataDir = join(tmp, 'refused')
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        join(import.meta.dirname, '../../services/cli/src/main.ts'),
        'up',
        '--data-dir',
        dataDir,
      ],
      { encoding: 'utf8', env: { ...process.env, HOME: tmp } },
    )
    assert.notEqual(r.status, 0, r.stderr)
    assert.match(r.stderr, /missing capabilities CAP_BPF, CAP_PERFMON/)
    assert.equal(existsSync(dataDir), false, 'no data folder was created')
  })

  it('captures, stores and answers; stops cleanly; a restart keeps the history', async () => {
    const dataDir = join(tmp, 'data')
    const port = await freePort()
    const marker = `up-${randomUUID().slice(0, 8)}`
    const from = new Date(Date.now() - 1000).toISOString()
    let up = await startUp(dataDir, port)
    try {
      // An exec that fails, a TCP exchange of 5 bytes each way, 20,000 reads and writes.
      const startedMs = Date.now()
      assert.equal((await cg.run(['/bin/sh', '-c', 'exit 3', marker])).code, 3)
      const exitedMs = Date.now()
      const tcp = await cg.run([
        '/bin/bash',
        '-c',
        `exec 3<>/dev/tcp/127.0.0.1/${echoPort}; printf hello >&3; read -r -n 5 reply <&3; exec 3>&-; echo "reply=$reply"`,
        marker,
      ])
      assert.equal(tcp.stdout.trim(), 'reply=hello', `${tcp.code} ${tcp.stderr}`)
      assert.equal(
        (
          await cg.run([
            '/bin/sh',
            '-c',
            'dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null',
            marker,
          ])
        ).code,
        0,
      )

      const execs = await eventually(
        () => markedExecs(up.url, from, marker),
        (l) =>
          l.some((e) => e.exitCode === 3) && l.some((e) => e.args[2]?.startsWith('dd ') === true),
        'the marked execs',
      )
      const sh = execs.find((e) => e.args[2] === 'exit 3')
      assert.ok(sh, JSON.stringify(execs))
      assert.equal(sh.exitCode, 3)
      assert.ok((sh.durationNs ?? 0) > 0)
      // The exec's time, stamped once by the collector and carried through the store, is
      // when this test ran it (its clock and the collector's are the same host's; 5 ms of
      // slack for the offset taken at the collector's start).
      const execMs = Date.parse(sh.time)
      assert.match(sh.time, /\.\d{9}Z$/)
      assert.ok(
        execMs >= startedMs - 5 && execMs <= exitedMs + 5,
        `exec time ${sh.time} not within ${new Date(startedMs).toISOString()}..${new Date(exitedMs).toISOString()}`,
      )
      assert.ok(
        execs.some((e) => e.args[2]?.startsWith('dd ') === true),
        JSON.stringify(execs),
      )

      const conns = await eventually(
        () =>
          gql<{
            connections: {
              edges: {
                node: {
                  event: string
                  destinationPort: number
                  bytesSent: number
                  bytesReceived: number
                  comm: string
                }
              }[]
            }
          }>(
            up.url,
            `query($from: DateTime!) { connections(filter: { from: $from }, first: 500) {
              edges { node { event destinationPort bytesSent bytesReceived comm } } } }`,
            { from },
          ),
        (d) =>
          d.connections.edges.some(
            (e) =>
              e.node.event === 'close' &&
              e.node.destinationPort === echoPort &&
              e.node.comm === 'bash',
          ),
        'the TCP exchange',
      )
      const close = conns.connections.edges.find(
        (e) =>
          e.node.event === 'close' && e.node.destinationPort === echoPort && e.node.comm === 'bash',
      )!
      assert.equal(close.node.bytesSent, 5)
      assert.equal(close.node.bytesReceived, 5)

      const counts = await eventually(
        () =>
          gql<{ syscallCounts: { syscall: string; count: number }[] }>(
            up.url,
            `query($from: DateTime!) { syscallCounts(filter: { from: $from }, first: 50) { syscall count } }`,
            { from },
          ),
        (d) =>
          ['read', 'write'].every(
            (s) => (d.syscallCounts.find((c) => c.syscall === s)?.count ?? 0) >= 20_000,
          ),
        'the read/write burst',
      )
      assert.ok(counts.syscallCounts.length > 2)
    } finally {
      assert.equal(await stop(up), 0, up.stderr())
    }
    assert.match(up.stderr(), /publisher flushed/)

    up = await startUp(dataDir, port)
    try {
      const again = await markedExecs(up.url, from, marker)
      assert.ok(
        again.some((e) => e.args[2] === 'exit 3' && e.exitCode === 3),
        'history kept',
      )
    } finally {
      assert.equal(await stop(up), 0, up.stderr())
    }
  })
})
