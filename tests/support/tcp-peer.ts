// A TCP peer for the network tests, run as its own process inside a test cgroup.
//   server HOST BYTES_TO_SEND [PORT]: listens on HOST:PORT (default 0: any free port), prints
//       `port N`, accepts one connection, reads until EOF, sends BYTES_TO_SEND, closes.
//       HOST `::` is a dual-stack listener: it accepts IPv4 clients as IPv4-mapped peers.
//   client HOST PORT BYTES_TO_SEND EXPECTED [LOCAL_PORT]: connects (from LOCAL_PORT when
//       given), prints `local N` (its own port, as the socket reports it), sends, half-closes,
//       reads EXPECTED bytes, prints `received N`; exits once its stdin is closed too, so a
//       caller can read /proc/PID while the process lives.
import { connect, createServer } from 'node:net'

const [mode, host, a, b, c, d] = process.argv.slice(2)

if (mode === 'server') {
  const reply = Buffer.alloc(Number(a), 0x6d)
  const server = createServer((socket) => {
    let received = 0
    socket.on('data', (chunk) => {
      received += chunk.length
    })
    socket.on('end', () => {
      socket.end(reply, () => {
        process.stdout.write(`received ${received}\n`)
        server.close()
      })
    })
  })
  server.listen(Number(b ?? 0), host, () => {
    const address = server.address()
    if (address && typeof address === 'object') process.stdout.write(`port ${address.port}\n`)
  })
} else if (mode === 'client') {
  const payload = Buffer.alloc(Number(b), 0x6e)
  const expected = Number(c)
  let received = 0
  const socket = connect({ host, port: Number(a), ...(d ? { localPort: Number(d) } : {}) }, () => {
    process.stdout.write(`local ${socket.localPort}\n`)
    socket.end(payload)
  })
  socket.on('data', (chunk) => {
    received += chunk.length
  })
  socket.on('close', () => {
    process.stdout.write(`received ${received}\n`)
    process.exitCode = received === expected ? 0 : 1
  })
  process.stdin.resume()
} else {
  process.stderr.write(
    'usage: tcp-peer server HOST BYTES [PORT] | client HOST PORT BYTES EXPECTED [LOCAL_PORT]\n',
  )
  process.exitCode = 2
}
