// Raw records captured from a real kernel (scripts/record-golden.ts) must keep decoding to the
// same events: a decoder change that misreads a field shows up here without root or BPF.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { decodeBatch, newDecodeErrors } from '../../src/events/decode.ts'
import { DEFAULT_SECURITY_SYSCALLS, syscallName } from '../../src/events/syscalls.ts'
import type { RecordEvent, TcpEvent } from '../../src/events/types.ts'

const dir = join(import.meta.dirname, '../fixtures/golden')

/** What the recording's workload did, written by the recording script (not by the decoder). */
interface Recording {
  cgroupId: number
  address: string
  server: { pid: number; port: number; bytesSent: number }
  client: { pid: number; port: number; bytesSent: number }
}

function decodeFixture(): RecordEvent[] {
  const got: RecordEvent[] = []
  decodeBatch(readFileSync(join(dir, 'records.bin')), got, newDecodeErrors(), {
    stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [],
  })
  return got
}

describe('golden records from the kernel', () => {
  it('decode to their JSON snapshot', () => {
    const batch = readFileSync(join(dir, 'records.bin'))
    const want = JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8'), (_k, v) =>
      typeof v === 'string' && v.startsWith('bigint:') ? BigInt(v.slice(7)) : v,
    ) as RecordEvent[]
    const got: RecordEvent[] = []
    const errors = newDecodeErrors()
    decodeBatch(batch, got, errors, {
      stringArgs: (nr) => DEFAULT_SECURITY_SYSCALLS[syscallName(nr)] ?? [],
    })
    assert.deepEqual(errors, newDecodeErrors())
    assert.deepEqual(got, want)
    const kinds = new Set(got.map((e) => (e.kind === 'tcp' ? `tcp:${e.tcp}` : e.kind)))
    for (const k of ['exec', 'exit', 'fork', 'syscall', 'tcp:connect', 'tcp:accept', 'tcp:close']) {
      assert.ok(kinds.has(k), `a ${k} record is in the fixture`)
    }
  })

  it("has TCP records that match the recording's own sockets", () => {
    const rec = JSON.parse(readFileSync(join(dir, 'recording.json'), 'utf8')) as Recording
    const tcp = decodeFixture().filter((e): e is TcpEvent => e.kind === 'tcp')
    // The client connected from the port the script bound to the port its server listened on;
    // each side's records name that side's process and report its local port as sport.
    const client = { pid: rec.client.pid, sport: rec.client.port, dport: rec.server.port }
    const server = { pid: rec.server.pid, sport: rec.server.port, dport: rec.client.port }
    const cases = [
      { tcp: 'connect', role: 'active', side: client, sent: 0, received: 0 },
      { tcp: 'accept', role: 'passive', side: server, sent: 0, received: 0 },
      {
        tcp: 'close',
        role: 'active',
        side: client,
        sent: rec.client.bytesSent,
        received: rec.server.bytesSent,
      },
      {
        tcp: 'close',
        role: 'passive',
        side: server,
        sent: rec.server.bytesSent,
        received: rec.client.bytesSent,
      },
    ] as const
    for (const c of cases) {
      const what = `${c.tcp} (${c.role})`
      const e = tcp.find((t) => t.tcp === c.tcp && t.role === c.role)
      assert.ok(e, `a ${what} record is in the fixture`)
      assert.deepEqual(
        {
          pid: e.pid,
          cgroupId: e.cgroupId,
          family: e.family,
          saddr: e.saddr,
          daddr: e.daddr,
          sport: e.sport,
          dport: e.dport,
          bytesSent: e.bytesSent,
          bytesReceived: e.bytesReceived,
        },
        {
          pid: c.side.pid,
          cgroupId: rec.cgroupId,
          family: 4,
          saddr: rec.address,
          daddr: rec.address,
          sport: c.side.sport,
          dport: c.side.dport,
          bytesSent: c.sent,
          bytesReceived: c.received,
        },
        what,
      )
    }
  })
})
