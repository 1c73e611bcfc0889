// The kernel's BPF run-time statistics, for the benches that weigh programs by them: every
// loaded program as bpftool lists it, and the sysctl that turns the counting on.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'

export interface BpftoolProg {
  id: number
  name: string
  run_time_ns?: number
  run_cnt?: number
}

/** Every BPF program on the machine, with its run time and count while statistics are on. */
export const bpftoolProgs = (): BpftoolProg[] =>
  JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }))

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled'

/** Turns kernel.bpf_stats_enabled on (a few ns per program run); returns what restores it. */
export function enableBpfStats(): () => void {
  const before = readFileSync(SYSCTL, 'utf8').trim()
  writeFileSync(SYSCTL, '1')
  return () => writeFileSync(SYSCTL, before)
}
