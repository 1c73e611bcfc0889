// Synthetic decoded events of every kind, shaped as the decoder produces them, for the Kafka
// tests (values chosen to exercise the edges: u64 past 2^32, pointers past 2^53, metadata).
import type { CapturedEvent } from '@ebbflow/common'

export function syntheticEvents(count: number, startNs = 1_000_000_000_000): CapturedEvent[] {
  const events: CapturedEvent[] = []
  const task = (i: number) => ({
    cgroupId: 2 ** 40 + (i % 7),
    pid: 1000 + i,
    tgid: 1000 + i,
    ppid: 1,
    uid: 1000,
    gid: 1000,
    pidnsIno: 4026531836,
    mntnsIno: 4026531841,
    comm: 'python3',
  })
  for (let i = 0; i < count; i++) {
    const bootNs = startNs + i * 1000
    switch (i % 9) {
      case 0:
        events.push({
          kind: 'exec',
          bootNs,
          ...task(i),
          parentComm: 'bash',
          filename: '/usr/bin/python3',
          args: ['/usr/bin/python3', '-m', 'http.server', '--bind', '127.0.0.1', `${8000 + i}`],
          argsTotalBytes: 52,
          argsTruncated: false,
          filenameTruncated: false,
          argsReadFailed: i % 2 === 0,
          meta: {
            node: 'node-a',
            namespace: 'default',
            pod: `web-${i}`,
            podUid: '0b7e0c6c-3a55-4c2f-9a0e-4b8c8d1e2f30',
            container: 'web',
            containerId: 'a'.repeat(64),
            workloadKind: 'Deployment',
            workloadName: 'web',
            labels: { app: 'web' },
          },
        })
        break
      case 1:
        events.push({
          kind: 'exit',
          bootNs,
          ...task(i),
          durationNs: 5_000_000_123,
          durationFromFork: false,
          exitCode: 3,
          signal: 0,
          coreDumped: false,
        })
        break
      case 2:
        events.push({ kind: 'fork', bootNs, ...task(i), childPid: 5000 + i, childTgid: 5000 + i })
        break
      case 3:
        events.push({
          kind: 'tcp',
          bootNs,
          tcp: 'close',
          role: 'active',
          cgroupId: 2 ** 40,
          sockId: 2 ** 47 + i,
          pid: 1000 + i,
          comm: 'curl',
          netnsIno: 4026531840,
          family: 6,
          saddr: '::1',
          daddr: '2001:db8::1',
          sport: 40000 + (i % 1000),
          dport: 443,
          durationNs: 12_345_678,
          bytesSent: 2 ** 33,
          bytesReceived: 1234,
        })
        break
      case 4:
        events.push({
          kind: 'traffic',
          bootNs,
          intervalNs: 1_000_000_000,
          cgroupId: 2 ** 40,
          direction: 'egress',
          protocol: 6,
          family: 4,
          remoteAddr: '10.0.0.7',
          remotePort: 5432,
          localPort: 0,
          packets: 17,
          bytes: 20_480,
        })
        break
      case 5:
        events.push({
          kind: 'syscall',
          bootNs,
          ...task(i),
          syscallNr: 165,
          syscall: 'mount',
          args: [0x7ffd_1234_5678n, 0xffff_ffff_ffff_fff0n, 0n, 1n, 0n, 0n],
          strings: [{ arg: 0, value: '/dev/sda1' }],
        })
        break
      case 6:
      case 7:
        events.push({
          kind: 'syscall_count',
          bootNs,
          intervalNs: 1_000_000_000,
          cgroupId: 2 ** 40 + (i % 5),
          syscallNr: i % 300,
          syscall: 'read',
          count: 1 + (i % 1000),
        })
        break
      default:
        events.push({ kind: 'drops', bootNs, family: 'net', reason: 'buffer_full', count: 3 })
    }
  }
  return events
}
