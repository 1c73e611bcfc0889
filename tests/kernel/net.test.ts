// Real BPF on the real kernel: the TCP lifecycle and per-cgroup traffic counters between a
// server process and a client process in two different cgroups, over IPv4, IPv6 and IPv4
// through a dual-stack IPv6 listener. Every expected value comes from what the test did: the
// ports it chose (or the one a peer reports from its own socket where the kernel picks it),
// the processes it started, the cgroups it made, the bytes it had sent.
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { KernelCapture } from '@ebbflow/collector'
import type { TcpEvent } from '@ebbflow/common'
import { isRoot, startCapture } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'
import { freePort } from '../support/ports.ts'

const skip = isRoot() ? false : 'needs root to load BPF programs'
const peer = join(import.meta.dirname, '../support/tcp-peer.ts')

/** Resolves with the first match of `pattern` in the child's stdout. */
async function line(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  let out = ''
  const deadline = AbortSignal.timeout(10_000)
  const collect = (d: Buffer) => {
    out += d
  }
  child.stdout!.on('data', collect)
  try {
    while (!pattern.test(out)) {
      if (child.exitCode !== null) throw new Error(`${what} exited: ${out}`)
      await once(child.stdout!, 'data', { signal: deadline })
    }
    return pattern.exec(out)![1]!
  } finally {
    child.stdout!.off('data', collect)
  }
}

/** The process's name as the kernel keeps it (the thread-group leader's comm). */
function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
}

/** Polls `check` until it holds, for at most 10 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Whether /proc/net/tcp lists local:remote (127.0.0.1 ports) in CLOSE_WAIT (state 08). */
function closeWait(localPort: number, remotePort: number): boolean {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0')
  const local = `0100007F:${hex(localPort)}`
  const remote = `0100007F:${hex(remotePort)}`
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/)
      return f[1] === local && f[2] === remote && f[3] === '08'
    })
}

interface Case {
  name: string
  family: 4 | 6
  /** Where the server listens; `::` is dual-stack. */
  listenHost: string
  /** What the client connects to. */
  connectHost: string
  /** The address both ends have, as the records must show it. */
  address: string
  /** Whether the test picks the port, or lets the kernel pick (the peer reports it). */
  serverPort: 'chosen' | 'kernel'
  clientPort: 'chosen' | 'kernel'
  /** How the accepting process is found (collector config acceptHook). */
  acceptHook: 'auto' | 'sys-exit'
}

/** The programs that must find the accepting process for `hook` on this machine. */
function acceptPrograms(hook: 'auto' | 'sys-exit'): string[] {
  // tracefs is mounted by scripts/setup.sh; without it, auto falls back to sys_exit.
  const tracefs = existsSync('/sys/kernel/tracing/events/syscalls/sys_exit_accept4')
  return hook === 'auto' && tracefs
    ? ['handle_sys_exit_accept', 'handle_sys_exit_accept4']
    : ['handle_sys_exit']
}

function assertAcceptPrograms(capture: KernelCapture, hook: 'auto' | 'sys-exit'): void {
  const net = capture.report.families.find((f) => f.family === 'net')!
  const want = acceptPrograms(hook)
  assert.deepEqual(
    net.programs.filter((p) => p.startsWith('handle_sys_exit')),
    want,
    `accept hook ${hook}`,
  )
}

const cases: Case[] = [
  {
    name: 'IPv4, both ports chosen',
    family: 4,
    listenHost: '127.0.0.1',
    connectHost: '127.0.0.1',
    address: '127.0.0.1',
    serverPort: 'chosen',
    clientPort: 'chosen',
    acceptHook: 'auto',
  },
  {
    // A listener on a kernel-picked port: its accepted sockets lose their port at CLOSE.
    name: 'IPv6, listening port picked by the kernel',
    family: 6,
    listenHost: '::1',
    connectHost: '::1',
    address: '::1',
    serverPort: 'kernel',
    clientPort: 'chosen',
    acceptHook: 'auto',
  },
  {
    // The accepted socket is IPv6 with ::ffff:127.0.0.1 on both ends: reported as IPv4.
    // The client's ephemeral port is zeroed by the kernel at CLOSE. The accepting process is
    // found by the fallback hook here, a program on every syscall exit.
    name: 'IPv4 client of a dual-stack IPv6 listener, accept seen on sys_exit',
    family: 4,
    listenHost: '::',
    connectHost: '127.0.0.1',
    address: '127.0.0.1',
    serverPort: 'chosen',
    clientPort: 'kernel',
    acceptHook: 'sys-exit',
  },
]

function assertEndpoints(
  e: TcpEvent,
  want: { family: 4 | 6; address: string; sport: number; dport: number },
  what: string,
): void {
  assert.equal(e.family, want.family, `${what}: family`)
  assert.equal(e.saddr, want.address, `${what}: saddr`)
  assert.equal(e.daddr, want.address, `${what}: daddr`)
  assert.equal(e.sport, want.sport, `${what}: sport`)
  assert.equal(e.dport, want.dport, `${what}: dport`)
}

describe('TCP records', { skip, timeout: 120_000 }, () => {
  for (const c of cases) {
    it(`${c.name}: connect, accept and both closes with their ports, owners and bytes`, async () => {
      const N = 100_000 // client -> server
      const M = 37_000 // server -> client
      const serverCg = createCgroup(`server${c.family}`)
      const clientCg = createCgroup(`client${c.family}`)
      const { capture, sink } = startCapture({ families: 'net', acceptHook: c.acceptHook })
      const children: ChildProcess[] = []
      try {
        assertAcceptPrograms(capture, c.acceptHook)
        const chosenServerPort = c.serverPort === 'chosen' ? await freePort(c.listenHost) : 0
        const server = serverCg.start([
          process.execPath,
          peer,
          'server',
          c.listenHost,
          String(M),
          String(chosenServerPort),
        ])
        children.push(server)
        const serverClosed = once(server, 'close')
        let serverOut = ''
        server.stdout!.on('data', (d) => {
          serverOut += d
        })
        const port = Number(await line(server, /port (\d+)/, 'server'))
        if (c.serverPort === 'chosen') assert.equal(port, chosenServerPort)
        const serverComm = commOf(server.pid!)

        const chosenClientPort = c.clientPort === 'chosen' ? await freePort(c.connectHost) : 0
        const client = clientCg.start([
          process.execPath,
          peer,
          'client',
          c.connectHost,
          String(port),
          String(N),
          String(M),
          ...(chosenClientPort ? [String(chosenClientPort)] : []),
        ])
        children.push(client)
        const clientClosed = once(client, 'close')
        let clientOut = ''
        client.stdout!.on('data', (d) => {
          clientOut += d
        })
        const clientPort = Number(await line(client, /local (\d+)/, 'client'))
        if (c.clientPort === 'chosen') assert.equal(clientPort, chosenClientPort)
        const clientComm = commOf(client.pid!)
        await line(client, /(received \d+)/, 'client')
        client.stdin!.end()
        const [clientCode] = await clientClosed
        assert.equal(clientCode, 0, `client: ${clientOut}`)
        assert.match(clientOut, new RegExp(`received ${M}\\b`))
        await serverClosed
        assert.match(serverOut, new RegExp(`received ${N}\\b`))

        const tcp = () =>
          sink.of('tcp').filter((e) => e.cgroupId === clientCg.id || e.cgroupId === serverCg.id)
        await sink.waitFor(
          () => tcp().filter((e) => e.tcp === 'close').length >= 2,
          10_000,
          'two closes',
        )
        const clientSide = { family: c.family, address: c.address, sport: clientPort, dport: port }
        const serverSide = { family: c.family, address: c.address, sport: port, dport: clientPort }
        const clientOwner = { pid: client.pid, comm: clientComm, cgroupId: clientCg.id }
        const serverOwner = { pid: server.pid, comm: serverComm, cgroupId: serverCg.id }
        const owner = (e: TcpEvent) => ({ pid: e.pid, comm: e.comm, cgroupId: e.cgroupId })

        const connect = tcp().filter((e) => e.tcp === 'connect')
        assert.equal(connect.length, 1, 'one connect')
        assert.equal(connect[0]!.role, 'active')
        assert.deepEqual(owner(connect[0]!), clientOwner, 'connect: the client process')
        assertEndpoints(connect[0]!, clientSide, 'connect')

        const accept = tcp().filter((e) => e.tcp === 'accept')
        assert.equal(accept.length, 1, 'one accept')
        assert.equal(accept[0]!.role, 'passive')
        assert.deepEqual(owner(accept[0]!), serverOwner, 'accept: the server process')
        assertEndpoints(accept[0]!, serverSide, 'accept')

        const closes = tcp().filter((e) => e.tcp === 'close')
        assert.equal(closes.length, 2, 'two closes')
        const clientClose = closes.find((e) => e.sockId === connect[0]!.sockId)
        const serverClose = closes.find((e) => e.sockId === accept[0]!.sockId)
        assert.ok(clientClose && serverClose, 'each close pairs with its open')
        assert.deepEqual(owner(clientClose), clientOwner, 'client close: the client process')
        assert.deepEqual(owner(serverClose), serverOwner, 'server close: the server process')
        assertEndpoints(clientClose, clientSide, 'client close')
        assertEndpoints(serverClose, serverSide, 'server close')
        assert.equal(clientClose.bytesSent, N)
        assert.equal(clientClose.bytesReceived, M)
        assert.equal(serverClose.bytesSent, M)
        assert.equal(serverClose.bytesReceived, N)
        assert.ok(clientClose.durationNs > 0 && clientClose.durationNs < 10e9)
        assert.ok(serverClose.durationNs > 0 && serverClose.durationNs < 10e9)

        capture.pollCounters()
        const egress = sink
          .of('traffic')
          .filter(
            (t) => t.cgroupId === clientCg.id && t.direction === 'egress' && t.remotePort === port,
          )
          .reduce((n, t) => n + t.bytes, 0)
        assert.ok(egress >= N, `client egress to port ${port}: ${egress} bytes, want >= ${N}`)
        const ingress = sink
          .of('traffic')
          .filter(
            (t) => t.cgroupId === serverCg.id && t.direction === 'ingress' && t.localPort === port,
          )
          .reduce((n, t) => n + t.bytes, 0)
        assert.ok(ingress >= N, `server ingress on port ${port}: ${ingress} bytes, want >= ${N}`)
      } finally {
        for (const child of children) if (child.exitCode === null) child.kill()
        await capture.stop()
        await serverCg.remove()
        await clientCg.remove()
      }
    })
  }

  it('a connection closed before any process accepted it: accept and close, with no owner', async () => {
    const N = 1000
    const serverCg = createCgroup('unaccepted-server')
    const clientCg = createCgroup('unaccepted-client')
    const { capture, sink } = startCapture({ families: 'net' })
    const children: ChildProcess[] = []
    try {
      const port = await freePort('127.0.0.1')
      // Listens and never accepts; closing the listener (at stdin EOF) resets the queued child.
      const listener = serverCg.start([
        'perl',
        '-MIO::Socket::IP',
        '-e',
        '$| = 1; my $s = IO::Socket::IP->new(LocalHost => "127.0.0.1", LocalPort => $ARGV[0], Listen => 8) or die "listen: $@"; print "listening\\n"; <STDIN>;',
        String(port),
      ])
      children.push(listener)
      const listenerClosed = once(listener, 'close')
      await line(listener, /(listening)/, 'listener')
      const clientPort = await freePort('127.0.0.1')
      const client = await clientCg.run([
        'perl',
        '-MIO::Socket::IP',
        '-e',
        'my $c = IO::Socket::IP->new(PeerHost => "127.0.0.1", PeerPort => $ARGV[0], LocalPort => $ARGV[1]) or die "connect: $@"; print $c "n" x $ARGV[2]; shutdown($c, 1);',
        String(port),
        String(clientPort),
        String(N),
      ])
      assert.equal(client.code, 0, client.stderr)
      // The queued child has the data and the FIN once the kernel lists it in CLOSE_WAIT.
      await until(() => closeWait(port, clientPort), 'the queued connection in CLOSE_WAIT')
      listener.stdin!.end()
      await listenerClosed

      const server = () => sink.of('tcp').filter((e) => e.cgroupId === serverCg.id)
      await sink.waitFor(() => server().some((e) => e.tcp === 'close'), 10_000, 'the close')
      const accept = server().filter((e) => e.tcp === 'accept')
      const close = server().filter((e) => e.tcp === 'close')
      assert.equal(accept.length, 1, 'one accept')
      assert.equal(close.length, 1, 'one close')
      assert.equal(accept[0]!.sockId, close[0]!.sockId)
      for (const e of [accept[0]!, close[0]!]) {
        assert.equal(e.role, 'passive')
        assert.equal(e.pid, 0, `${e.tcp}: no process took it`)
        assert.equal(e.comm, '')
        assertEndpoints(
          e,
          { family: 4, address: '127.0.0.1', sport: port, dport: clientPort },
          e.tcp,
        )
      }
      assert.equal(close[0]!.bytesReceived, N)
      assert.equal(close[0]!.bytesSent, 0)
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill()
      await capture.stop()
      await serverCg.remove()
      await clientCg.remove()
    }
  })

  it('a refused connect: connect_failed from the client, with its ports and owner', async () => {
    const clientCg = createCgroup('refused-client')
    const { capture, sink } = startCapture({ families: 'net' })
    try {
      const port = await freePort('127.0.0.1') // nothing listens there: the SYN gets a RST
      const clientPort = await freePort('127.0.0.1')
      const client = await clientCg.run([
        'perl',
        '-MIO::Socket::IP',
        '-e',
        'IO::Socket::IP->new(PeerHost => "127.0.0.1", PeerPort => $ARGV[0], LocalPort => $ARGV[1]) and die "connected"; print "refused\n";',
        String(port),
        String(clientPort),
      ])
      assert.equal(client.code, 0, client.stderr)
      assert.match(client.stdout, /refused/)
      const mine = () => sink.of('tcp').filter((e) => e.cgroupId === clientCg.id)
      await sink.waitFor(() => mine().length > 0, 10_000, 'the failed connect')
      assert.deepEqual(
        mine().map((e) => e.tcp),
        ['connect_failed'],
      )
      const e = mine()[0]!
      assert.equal(e.role, 'active')
      assert.equal(e.pid, client.pid)
      assert.equal(e.comm, 'perl')
      assertEndpoints(e, { family: 4, address: '127.0.0.1', sport: clientPort, dport: port }, e.tcp)
    } finally {
      await capture.stop()
      await clientCg.remove()
    }
  })
})
