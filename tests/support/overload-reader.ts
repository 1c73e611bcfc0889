// The overload test's collector: the real kernel capture (exec and syscall families) in its own
// process, so the test can stop it with SIGSTOP as a starved node would. It counts the records
// of one cgroup (the workload's) and every drop the kernel and the reader counted, and prints a
// JSON snapshot of its counts every 200 ms and once more, final, on SIGTERM.
//   node overload-reader.ts <cgroup id> <ring buffer bytes>
import { type CaptureSink, KernelCapture, loadCollectorConfig } from '@ebbflow/collector'
import type { CounterEvent, Family, RecordEvent } from '@ebbflow/common'
import { createLogger } from '@ebbflow/common'

const [cgroupArg, ringArg] = process.argv.slice(2)
const cgroup = Number(cgroupArg)
const counts = {
  /** Records of the workload's cgroup, per family. */
  delivered: { exec: 0, net: 0, syscall: 0 } as Record<Family, number>,
  /** Records of every other process. */
  others: { exec: 0, net: 0, syscall: 0 } as Record<Family, number>,
  /** Drops by family and reason. */
  drops: {} as Record<string, Record<string, number>>,
}

const sink: CaptureSink = {
  records(events: RecordEvent[], family: Family) {
    for (const e of events) {
      if ('cgroupId' in e && e.cgroupId === cgroup) counts.delivered[family]++
      else counts.others[family]++
    }
  },
  counters(events: CounterEvent[]) {
    for (const e of events) {
      if (e.kind !== 'drops') continue
      counts.drops[e.family] ??= {}
      const f = counts.drops[e.family]!
      f[e.reason] = (f[e.reason] ?? 0) + e.count
    }
  },
}

const config = loadCollectorConfig(
  {
    families: 'exec,syscall',
    securitySyscalls: 'execve',
    ringBufferBytes: ringArg ?? '65536',
    counterIntervalMs: '200',
    procScanMax: '0',
  },
  {},
)
const capture = KernelCapture.start(config, sink, createLogger('overload-reader', 'warn'))
const print = (final: boolean) =>
  process.stdout.write(`${JSON.stringify({ final, at: Date.now(), ...counts })}\n`)
const timer = setInterval(() => {
  capture.pollCounters()
  print(false)
}, 200)
process.on('SIGTERM', () => {
  clearInterval(timer)
  capture.finalCounters()
  void capture.stop().then(() => {
    print(true)
    process.exit(0)
  })
})
print(false)
