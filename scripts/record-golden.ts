// Records golden fixtures for the decoder from the real kernel: runs a small workload under
// capture, keeps one raw record of each kind (exec, exit, fork, tcp connect/accept/closes,
// syscall), and writes them framed as the addon frames them, with their decoding as JSON,
// and what the workload itself did (its cgroup, pids, the ports it bound, the bytes it
// wrote) in recording.json, from which the golden test justifies the TCP records.
// Usage (root): node scripts/record-golden.ts   — then review and commit the three files.
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import {
  createLogger,
  DEFAULT_SECURITY_SYSCALLS,
  decodeBatch,
  EVENT_TYPE,
  LAYOUTS,
  newDecodeErrors,
  type RecordEvent,
  syscallName,
  syscallNumber,
} from '@ebbflow/common'
import { RecordingSink } from '../tests/support/capture.ts'
import { createCgroup } from '../tests/support/cgroup.ts'
import { freePort } from '../tests/support/ports.ts'

const root = join(import.meta.dirname, '..')
const out = join(root, 'services/common/test/fixtures/golden')
const frames = new Map<string, Buffer>()
const TCP_KIND_OFFSET = LAYOUTS.ebf_tcp_event_v1.fields.kind.offset
const TCP_ROLE_OFFSET = LAYOUTS.ebf_tcp_event_v1.fields.role.offset

function keep(batch: Buffer): void {
  for (let at = 0; at + 4 <= batch.length; ) {
    const size = batch.readUInt32LE(at)
    const frame = batch.subarray(at, at + 4 + ((size + 7) & ~7))
    const type = batch.readUInt16LE(at + 4)
    // tcp: one per kind and role, so both sides' closes are kept
    const key =
      type === EVENT_TYPE.TCP
        ? `tcp-${batch[at + 4 + TCP_KIND_OFFSET]}-${batch[at + 4 + TCP_ROLE_OFFSET]}`
        : `type-${type}`
    if (!frames.has(key)) frames.set(key, Buffer.from(frame))
    at += frame.length
  }
}

const cg = createCgroup('golden')
let recording: object | undefined
const config = loadCollectorConfig({ counterIntervalMs: '3600000', flushMs: '10' }, {})
const capture = KernelCapture.start(
  config,
  new RecordingSink(),
  createLogger('golden', 'warn'),
  (_f, b) => keep(b),
)
try {
  await cg.run(['/bin/sh', '-c', '/bin/true golden-marker; exit 3'])
  const peer = join(root, 'tests/support/tcp-peer.ts')
  const host = '127.0.0.1'
  const serverPort = await freePort(host)
  const clientPort = await freePort(host)
  const [clientBytes, serverBytes] = [2000, 1000]
  const server = cg.start([
    process.execPath,
    peer,
    'server',
    host,
    String(serverBytes),
    String(serverPort),
  ])
  const closed = once(server, 'close')
  const [data] = (await once(server.stdout!, 'data')) as [Buffer]
  if (!String(data).includes(`port ${serverPort}`)) throw new Error(`server: ${data}`)
  const client = await cg.run([
    process.execPath,
    peer,
    'client',
    host,
    String(serverPort),
    String(clientBytes),
    String(serverBytes),
    String(clientPort),
  ])
  if (client.code !== 0) throw new Error(`client: ${client.stdout} ${client.stderr}`)
  await closed
  recording = {
    cgroupId: cg.id,
    address: host,
    server: { pid: server.pid!, port: serverPort, bytesSent: serverBytes },
    client: { pid: client.pid, port: clientPort, bytesSent: clientBytes },
  }
  await cg.run([
    'perl',
    '-e',
    `my $t = "/nonexistent/golden"; syscall(${syscallNumber('mount')}, $t, $t, $t, 0, 0);`,
  ])
  await new Promise((r) => setTimeout(r, 300))
} finally {
  await capture.stop()
  await cg.remove()
}

const batch = Buffer.concat(
  [...frames.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, f]) => f),
)
const events: RecordEvent[] = []
const errors = newDecodeErrors()
decodeBatch(batch, events, errors, {
  stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [],
})
const json = JSON.stringify(events, (_k, v) => (typeof v === 'bigint' ? `bigint:${v}` : v), 2)
writeFileSync(join(out, 'records.bin'), batch)
writeFileSync(join(out, 'records.json'), `${json}\n`)
writeFileSync(join(out, 'recording.json'), `${JSON.stringify(recording, null, 2)}\n`)
process.stderr.write(
  `${events.length} records (${[...frames.keys()].join(', ')}), errors ${JSON.stringify(errors)}\n`,
)
