// A TCP peer of the acceptance scenario, run as its own process inside a pod's container cgroup,
// on addresses and ports the test chose.
//   server ADDR PORT REPLY_BYTES              listens on ADDR:PORT, prints "listening comm=C",
//                                             accepts one connection, reads to EOF, replies
//                                             REPLY_BYTES, closes, prints "received N", exits
//   client LADDR LPORT ADDR PORT SEND_BYTES   connects from LADDR:LPORT to ADDR:PORT, prints
//                                             "connected comm=C", sends SEND_BYTES, half-closes,
//                                             reads until the server closes, prints "received N"
// `comm` is the kernel's name of the thread holding the socket (Node names its main thread),
// read from /proc so the test compares the captured comm with what the kernel said.
import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'

const [mode, ...args] = process.argv.slice(2)
const comm = () => readFileSync('/proc/thread-self/comm', 'utf8').trim()

if (mode === 'server') {
  const [host, port, replyBytes] = args
  const reply = Buffer.alloc(Number(replyBytes), 0x62)
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
  server.listen({ host, port: Number(port), exclusive: true }, () => {
    process.stdout.write(`listening comm=${comm()}\n`)
  })
} else if (mode === 'client') {
  const [localAddress, localPort, host, port, sendBytes] = args
  const payload = Buffer.alloc(Number(sendBytes), 0x61)
  let received = 0
  const socket = connect(
    { host, port: Number(port), localAddress, localPort: Number(localPort) },
    () => {
      process.stdout.write(`connected comm=${comm()}\n`)
      socket.end(payload)
    },
  )
  socket.on('data', (d) => {
    received += d.length
  })
  socket.on('close', () => {
    process.stdout.write(`received ${received}\n`)
  })
} else {
  process.stderr.write(
    'usage: peer server ADDR PORT REPLY_BYTES | client LADDR LPORT ADDR PORT SEND_BYTES\n',
  )
  process.exitCode = 2
}
