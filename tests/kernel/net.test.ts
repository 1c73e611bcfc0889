// Real BPF on the real kernel: the TCP lifecycle and per-cgroup traffic counters between a
// server and a client in two different cgroups, over IPv4 and IPv6.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { isRoot, startCapture } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'

const skip = isRoot() ? false : 'needs root to load BPF programs'
const peer = join(import.meta.dirname, '../support/tcp-peer.ts')

for (const [family, host] of [
  [4, '127.0.0.1'],
  [6, '::1'],
] as const) {
  describe(`TCP over IPv${family}`, { skip }, () => {
    it('sees connect, accept and both closes with exact byte counts, charged to each side', async () => {
      const N = 100_000 // client -> server
      const M = 37_000 // server -> client
      const serverCg = createCgroup(`server${family}`)
      const clientCg = createCgroup(`client${family}`)
      const { capture, sink } = startCapture({ families: 'net' })
      try {
        const server = serverCg.start([process.execPath, peer, 'server', host, String(M)])
        const serverClosed = once(server, 'close')
        let serverOut = ''
        server.stdout!.on('data', (d) => {
          serverOut += d
        })
        while (!/port (\d+)/.test(serverOut)) await once(server.stdout!, 'data')
        const port = Number(/port (\d+)/.exec(serverOut)![1])
        const client = await clientCg.run([
          process.execPath,
          peer,
          'client',
          host,
          String(port),
          String(N),
          String(M),
        ])
        assert.equal(client.code, 0, `client: ${client.stdout} ${client.stderr}`)
        await serverClosed
        assert.match(serverOut, new RegExp(`received ${N}`))

        const tcp = () =>
          sink.of('tcp').filter((e) => e.cgroupId === clientCg.id || e.cgroupId === serverCg.id)
        await sink.waitFor(
          () => tcp().filter((e) => e.tcp === 'close').length >= 2,
          10_000,
          'two closes',
        )

        const connect = tcp().filter((e) => e.tcp === 'connect')
        assert.equal(connect.length, 1)
        assert.equal(connect[0]!.cgroupId, clientCg.id)
        assert.equal(connect[0]!.role, 'active')
        assert.equal(connect[0]!.pid, client.pid)
        assert.equal(connect[0]!.dport, port)
        assert.equal(connect[0]!.daddr, host)
        assert.equal(connect[0]!.family, family)

        const accept = tcp().filter((e) => e.tcp === 'accept')
        assert.equal(accept.length, 1)
        assert.equal(accept[0]!.cgroupId, serverCg.id, 'the accept is charged to the server cgroup')
        assert.equal(accept[0]!.role, 'passive')
        assert.equal(accept[0]!.sport, port)

        const clientClose = tcp().find((e) => e.tcp === 'close' && e.cgroupId === clientCg.id)!
        const serverClose = tcp().find((e) => e.tcp === 'close' && e.cgroupId === serverCg.id)!
        assert.equal(clientClose.sockId, connect[0]!.sockId)
        assert.equal(serverClose.sockId, accept[0]!.sockId)
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
        await capture.stop()
        await serverCg.remove()
        await clientCg.remove()
      }
    })
  })
}
