// A TCP peer for the network tests, run as its own process inside a test cgroup.
//   server HOST BYTES_TO_SEND: listens on HOST:0, prints the port, accepts one connection,
//                              reads until EOF, sends BYTES_TO_SEND, closes.
//   client HOST PORT BYTES_TO_SEND EXPECTED: connects, sends, half-closes, reads EXPECTED bytes.
import { connect, createServer } from 'node:net'

const [mode, host, a, b, c] = process.argv.slice(2)

if (mode === 'server') {
  const reply = Buffer.alloc(Number(a), 0x6d)
  const server = createServer((socket) => {
    let received = 0
    socket.on('data', (d) => {
      received += d.length
    })
    socket.on('end', () => {
      socket.end(reply, () => {
        process.stdout.write(`received ${received}\n`)
        server.close()
      })
    })
  })
  server.listen(0, host, () => {
    const address = server.address()
    if (address && typeof address === 'object') process.stdout.write(`port ${address.port}\n`)
  })
} else if (mode === 'client') {
  const payload = Buffer.alloc(Number(b), 0x6e)
  const expected = Number(c)
  let received = 0
  const socket = connect({ host, port: Number(a) }, () => socket.end(payload))
  socket.on('data', (d) => {
    received += d.length
  })
  socket.on('close', () => {
    process.stdout.write(`received ${received}\n`)
    process.exitCode = received === expected ? 0 : 1
  })
} else {
  process.stderr.write('usage: tcp-peer server HOST BYTES | client HOST PORT BYTES EXPECTED\n')
  process.exitCode = 2
}
