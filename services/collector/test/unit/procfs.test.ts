// The /proc read at start: parsing odd files, a fake /proc tree with a kernel thread, a zombie
// and a process gone mid-read, the real /proc for a process the test started, and the filter
// that keeps a process from being told twice.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { ExecEvent, RecordEvent } from '@ebbflow/common'
import {
  clockTicksPerSecond,
  parseCgroupV2Path,
  parseNsLink,
  parseStat,
  parseStatus,
  StartScanDedup,
  scanProcfs,
} from '../../src/procfs.ts'

/** A /proc/PID/stat line as the kernel prints it (fields 3..52), with the given values. */
function statLine(
  pid: number,
  comm: string,
  o: { state?: string; ppid?: number; flags?: number; start?: number } = {},
) {
  const f = Array.from({ length: 50 }, () => '0')
  f[0] = o.state ?? 'S'
  f[1] = String(o.ppid ?? 1)
  f[6] = String(o.flags ?? 0x400100)
  f[19] = String(o.start ?? 12345)
  return `${pid} (${comm}) ${f.join(' ')}\n`
}

describe('parseStat', () => {
  const cases: { name: string; comm: string }[] = [
    { name: 'plain', comm: 'bash' },
    { name: 'spaces', comm: 'tmux: server' },
    { name: 'parentheses and spaces', comm: 'a) (b c' },
    { name: 'a lone closing parenthesis', comm: ')' },
    { name: 'looks like more fields', comm: ') S 1 2 (' },
  ]
  for (const c of cases) {
    it(`comm with ${c.name}`, () => {
      const s = parseStat(statLine(42, c.comm, { ppid: 7, flags: 0x200040, start: 999 }))
      assert.deepEqual(s, { comm: c.comm, state: 'S', ppid: 7, flags: 0x200040, startTicks: 999 })
    })
  }
  it('cut short or garbled: undefined', () => {
    assert.equal(parseStat(''), undefined)
    assert.equal(parseStat('42 (bash'), undefined)
    assert.equal(parseStat('42 (bash) S 1 2 3'), undefined)
    assert.equal(parseStat(statLine(42, 'x', { start: Number.NaN })), undefined)
  })
})

describe('parseStatus, parseCgroupV2Path, parseNsLink', () => {
  it('real uid and gid, and whether it is a pid namespace’s init', () => {
    const base = 'Name:\tsh\nUid:\t1000\t0\t0\t0\nGid:\t1001\t0\t0\t0\n'
    assert.deepEqual(parseStatus(`${base}NSpid:\t4242\n`), {
      uid: 1000,
      gid: 1001,
      pidnsInit: false,
    })
    assert.deepEqual(parseStatus(`${base}NSpid:\t4242\t1\n`), {
      uid: 1000,
      gid: 1001,
      pidnsInit: true,
    })
    assert.deepEqual(parseStatus(`${base}NSpid:\t4242\t7\n`), {
      uid: 1000,
      gid: 1001,
      pidnsInit: false,
    })
    assert.equal(parseStatus('Name:\tsh\n'), undefined, 'no Uid line')
  })
  it('the 0:: line of a hybrid layout', () => {
    const text = '12:cpu,cpuacct:/x\n1:name=systemd:/y\n0::/kubepods/burstable/podx/abc\n'
    assert.equal(parseCgroupV2Path(text), '/kubepods/burstable/podx/abc')
    assert.equal(parseCgroupV2Path('1:name=systemd:/y\n'), undefined, 'v1 only')
  })
  it('namespace links', () => {
    assert.equal(parseNsLink('pid:[4026531836]'), 4026531836)
    assert.equal(parseNsLink(''), 0)
  })
  it('clock ticks from the auxiliary vector', () => {
    // USER_HZ is 100 on every architecture this runs on; a wrong parse gives anything else.
    assert.equal(clockTicksPerSecond(), 100)
    assert.equal(clockTicksPerSecond('/nonexistent/auxv'), 100)
  })
})

describe('scanProcfs on a made-up /proc', () => {
  it('reads a process, skips a kernel thread, a zombie and one gone mid-read, and bounds argv', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-procfs-'))
    try {
      const proc = join(dir, 'proc')
      const cgroups = join(dir, 'cgroup')
      mkdirSync(join(cgroups, 'pod'), { recursive: true })
      const write = (
        pid: number,
        files: Record<string, string>,
        links: Record<string, string> = {},
      ) => {
        mkdirSync(join(proc, String(pid), 'ns'), { recursive: true })
        for (const [name, text] of Object.entries(files))
          writeFileSync(join(proc, String(pid), name), text)
        for (const [name, target] of Object.entries(links))
          symlinkSync(target, join(proc, String(pid), name))
      }
      const status = 'Uid:\t1000\t1000\t1000\t1000\nGid:\t50\t50\t50\t50\nNSpid:\t10\n'
      const argv = ['/usr/bin/python3', '-c', 'x'.repeat(40), 'tail']
      const cmdline = `${argv.join('\0')}\0`
      write(
        10,
        {
          stat: statLine(10, 'py (worker)', { ppid: 1, start: 250 }),
          status,
          cmdline,
          cgroup: '0::/pod\n',
        },
        { exe: '/usr/bin/python3.13', 'ns/pid': 'pid:[4026531836]', 'ns/mnt': 'mnt:[4026531832]' },
      )
      write(
        1,
        {
          stat: statLine(1, 'init', { ppid: 0, start: 1 }),
          status,
          cmdline: '/sbin/init\0',
          cgroup: '0::/\n',
        },
        {
          exe: '/sbin/init',
        },
      )
      // A kernel thread: PF_KTHREAD, empty cmdline, no exe.
      write(2, {
        stat: statLine(2, 'kthreadd', { ppid: 0, flags: 0x208040 }),
        status,
        cmdline: '',
        cgroup: '0::/\n',
      })
      write(3, {
        stat: statLine(3, 'defunct', { state: 'Z', ppid: 10 }),
        status,
        cmdline: '',
        cgroup: '0::/\n',
      })
      // Gone between its stat and the rest: nothing but stat is left.
      write(4, { stat: statLine(4, 'brief', { ppid: 10 }) })
      mkdirSync(join(proc, 'self'))
      let clock = 1000
      const scan = scanProcfs({
        procRoot: proc,
        cgroupRoot: cgroups,
        argsMax: 32,
        maxProcesses: 100,
        now: () => clock++,
        ticksPerSecond: 100,
      })
      assert.deepEqual(
        { ...scan.stats, durationMs: 0 },
        {
          processes: 2,
          kernelThreads: 1,
          zombies: 1,
          vanished: 1,
          unreadable: 0,
          leftOut: 0,
          durationMs: 0,
        },
      )
      assert.deepEqual(
        scan.events.map((e) => e.tgid),
        [1, 10],
        'oldest first',
      )
      const e = scan.events[1]!
      const kept = Buffer.from(cmdline).subarray(0, 32).toString()
      assert.deepEqual(e, {
        kind: 'exec',
        bootNs: 2_500_000_000,
        cgroupId: statSync(join(cgroups, 'pod')).ino,
        pid: 10,
        tgid: 10,
        ppid: 1,
        uid: 1000,
        gid: 50,
        pidnsIno: 4026531836,
        mntnsIno: 4026531832,
        comm: 'py (worker)',
        parentComm: 'init',
        filename: '/usr/bin/python3.13',
        args: kept.split('\0'),
        argsTotalBytes: Buffer.byteLength(cmdline),
        argsTruncated: true,
        filenameTruncated: false,
        argsReadFailed: false,
        seenAtStart: true,
      } satisfies ExecEvent)
      assert.deepEqual(scan.processes[1], {
        tgid: 10,
        ppid: 1,
        startTicks: 250,
        pidnsInit: false,
        cgroupId: e.cgroupId,
      })
      assert.ok(scan.readAt.get(10)! >= 1000 && scan.readAt.get(10)! < scan.endNs)

      const bounded = scanProcfs({
        procRoot: proc,
        cgroupRoot: cgroups,
        argsMax: 4096,
        maxProcesses: 1,
        now: () => 0,
      })
      assert.equal(bounded.stats.processes, 1)
      assert.equal(bounded.stats.leftOut, 4)
      assert.deepEqual(bounded.events[0]!.args, ['/sbin/init'])
      assert.equal(bounded.events[0]!.argsTruncated, false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('scanProcfs in a cgroup namespace of its own', () => {
  it('names the cgroup of a process whose path is above the namespace root from cgroup.procs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-procfs-'))
    try {
      const proc = join(dir, 'proc', '20')
      const cgroups = join(dir, 'cgroup')
      mkdirSync(join(cgroups, 'kubepods', 'pod'), { recursive: true })
      writeFileSync(join(cgroups, 'cgroup.procs'), '1\n')
      writeFileSync(join(cgroups, 'kubepods', 'cgroup.procs'), '')
      writeFileSync(join(cgroups, 'kubepods', 'pod', 'cgroup.procs'), '19\n20\n')
      mkdirSync(proc, { recursive: true })
      writeFileSync(join(proc, 'stat'), statLine(20, 'app'))
      writeFileSync(join(proc, 'status'), 'Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n')
      writeFileSync(join(proc, 'cmdline'), 'app\0')
      // As seen from the collector's own cgroup (/kubepods/collector, its namespace root).
      writeFileSync(join(proc, 'cgroup'), '0::/../pod\n')
      const scan = scanProcfs({
        procRoot: join(dir, 'proc'),
        cgroupRoot: cgroups,
        argsMax: 64,
        maxProcesses: 10,
        now: () => 0,
      })
      assert.equal(scan.events[0]?.cgroupId, statSync(join(cgroups, 'kubepods', 'pod')).ino)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('scanProcfs on the real /proc', () => {
  it('reads a process that renamed itself "a) (b c", with its argv and parent', async () => {
    const child = spawn(
      '/bin/sh',
      ['-c', 'printf "a) (b c" > /proc/$$/comm; echo ready; read x', 'argv0-test'],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
      },
    )
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve())
        child.once('error', reject)
      })
      const scan = scanProcfs({
        cgroupRoot: '/nonexistent',
        argsMax: 1024,
        maxProcesses: 1_000_000,
        selfPid: process.pid,
        now: () => 0,
      })
      assert.equal(scan.events.filter((e) => e.tgid === process.pid).length, 0, 'not itself')
      const e = scan.events.find((x) => x.tgid === child.pid)
      assert.ok(e, 'the child is read')
      assert.equal(e.comm, 'a) (b c')
      assert.deepEqual(e.args, [
        '/bin/sh',
        '-c',
        'printf "a) (b c" > /proc/$$/comm; echo ready; read x',
        'argv0-test',
      ])
      assert.equal(e.ppid, process.pid)
      assert.equal(e.uid, process.getuid!())
      assert.equal(e.gid, process.getgid!())
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('StartScanDedup', () => {
  const exec = (tgid: number, bootNs: number, args = ['x']): RecordEvent =>
    ({ kind: 'exec', tgid, pid: tgid, bootNs, args }) as unknown as RecordEvent
  it('drops the captured exec the read already told; an earlier image, later execs and everything past the horizon pass', () => {
    const got: RecordEvent[] = []
    const f = new StartScanDedup({ records: (e) => got.push(...e), counters: () => {} })
    f.expect(
      {
        events: [exec(5, 1), exec(6, 1)] as ExecEvent[],
        readAt: new Map([
          [5, 100],
          [6, 100],
        ]),
        endNs: 120,
      },
      1000,
    )
    f.records([exec(5, 80, ['sh']), exec(5, 90), exec(6, 150), exec(7, 50)], 'exec')
    assert.deepEqual(
      got.map((e) => [(e as ExecEvent).tgid, e.bootNs]),
      [
        [5, 80],
        [6, 150],
        [7, 50],
      ],
    )
    assert.equal(f.dropped, 1)
    f.records([exec(5, 95)], 'exec')
    assert.equal(f.dropped, 1, 'one drop per process read')
    f.records([exec(6, 2000), exec(6, 60)], 'exec')
    assert.equal(f.dropped, 1, 'past the horizon nothing is dropped')
  })
})
