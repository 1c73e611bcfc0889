// What a collector says on a kernel that lacks a feature the BPF programs need: the kernel
// release, each missing feature with the Linux release that brought it and the families that
// need it, and the minimum for the families asked for. The feature sets are written here, as
// older kernels would probe; tests/kernel and native/test check the probes on this kernel.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Family, KernelSupportError } from '@ebbflow/common'
import type { Features } from '@ebbflow/native'
import {
  checkKernelSupport,
  KERNEL_REQUIREMENTS,
  kernelSupportProblem,
  minimumKernel,
} from '../../src/kernel-support.ts'

const DEFAULT_FAMILIES: Family[] = ['exec', 'net', 'syscall']

function kernel(release: string, lacking: (keyof Features)[] = []): Features {
  const f: Features = {
    ringbuf: true,
    btf: true,
    cgroupSkb: true,
    currentTaskBtf: true,
    sockCgroupPointer: true,
    bpfLoop: true,
    findVma: true,
    numPossibleCpus: 2,
    kernelRelease: release,
  }
  for (const k of lacking) (f as unknown as Record<string, boolean>)[k] = false
  return f
}

describe('kernel support', () => {
  it('needs Linux 5.11 for exec and syscall, 5.15 with net, 5.17 with file', () => {
    const cases: [Family[], string][] = [
      [['exec'], '5.11'],
      [['syscall'], '5.11'],
      [['exec', 'syscall'], '5.11'],
      [['net'], '5.15'],
      [DEFAULT_FAMILIES, '5.15'],
      [['file'], '5.17'],
      [['exec', 'net', 'syscall', 'file'], '5.17'],
    ]
    for (const [families, min] of cases) assert.equal(minimumKernel(families), min, families.join())
  })

  it('a kernel with every feature runs every family', () => {
    assert.equal(
      kernelSupportProblem(kernel('6.18.0'), ['exec', 'net', 'syscall', 'file']),
      undefined,
    )
    assert.doesNotThrow(() => checkKernelSupport(kernel('6.18.0'), DEFAULT_FAMILIES))
  })

  // [case, release, families, what the kernel lacks, what the message says, what it must not]
  const CASES: [string, string, Family[], (keyof Features)[], RegExp[], RegExp[]][] = [
    [
      'a 5.10 kernel, default families',
      '5.10.0-28-amd64',
      DEFAULT_FAMILIES,
      ['currentTaskBtf', 'sockCgroupPointer', 'bpfLoop', 'findVma'],
      [
        /^kernel 5\.10\.0-28-amd64 lacks what the BPF programs need: /,
        /the bpf_get_current_task_btf helper \(Linux 5\.11\+; every family\)/,
        /a cgroup pointer in struct sock_cgroup_data .*\(Linux 5\.15\+; net\)/,
        /The families exec, net, syscall need Linux 5\.15 or newer/,
        /backported/,
      ],
      [/bpf_loop/, /bpf_find_vma/], // file was not asked for
    ],
    [
      'a 5.15 kernel asked for the file family',
      '5.15.0',
      ['exec', 'file'],
      ['bpfLoop', 'findVma'],
      [
        /^kernel 5\.15\.0 lacks/,
        /the bpf_loop helper \(Linux 5\.17\+; file\); the bpf_find_vma helper \(Linux 5\.17\+; file\)\./,
        /The families exec, file need Linux 5\.17 or newer/,
      ],
      [/sock_cgroup_data/],
    ],
    [
      'a 5.4 kernel',
      '5.4.0',
      ['exec'],
      ['ringbuf', 'currentTaskBtf', 'sockCgroupPointer'],
      [
        /BPF ring buffers \(Linux 5\.8\+; every family\); the bpf_get_current_task_btf/,
        /need Linux 5\.11/,
      ],
      [/sock_cgroup_data/],
    ],
    [
      'a kernel built without BTF',
      '6.1.0',
      ['syscall'],
      ['btf'],
      [/kernel BTF at \/sys\/kernel\/btf\/vmlinux \(CONFIG_DEBUG_INFO_BTF\)/],
      [/ring buffers/],
    ],
    [
      'a kernel without cgroup_skb, asked for net',
      '6.1.0',
      ['net'],
      ['cgroupSkb'],
      [/cgroup_skb programs \(traffic counters\) \(Linux 4\.10\+; net\)/, /need Linux 5\.15/],
      [],
    ],
  ]
  for (const [name, release, families, lacking, says, omits] of CASES) {
    it(`refuses ${name}, naming what is missing`, () => {
      const features = kernel(release, lacking)
      const message = kernelSupportProblem(features, families)
      assert.ok(message, 'a problem is reported')
      for (const re of says) assert.match(message, re)
      for (const re of omits) assert.doesNotMatch(message, re)
      assert.throws(
        () => checkKernelSupport(features, families),
        (e: unknown) =>
          e instanceof KernelSupportError && e.code === 'KERNEL_TOO_OLD' && e.message === message,
      )
    })
  }

  it('a feature only another family needs does not stop these families', () => {
    assert.equal(
      kernelSupportProblem(kernel('5.15.0', ['bpfLoop', 'findVma']), DEFAULT_FAMILIES),
      undefined,
    )
    assert.equal(
      kernelSupportProblem(kernel('5.11.0', ['sockCgroupPointer']), ['exec', 'syscall']),
      undefined,
    )
  })

  it('every requirement is a feature the probe reports', () => {
    const probed = Object.keys(kernel('x')).filter(
      (k) => typeof kernel('x')[k as keyof Features] === 'boolean',
    )
    assert.deepEqual([...new Set(KERNEL_REQUIREMENTS.map((r) => r.feature))].sort(), probed.sort())
  })
})
