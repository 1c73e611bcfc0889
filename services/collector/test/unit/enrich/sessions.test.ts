// Exec sessions from fork/exec/exit events in capture order.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { ExecEvent, ExitEvent, ForkEvent } from '@ebbflow/common'
import { SessionTracker, seedMembers } from '../../../src/enrich/sessions.ts'

const task = (tgid: number, ppid: number) => ({
  cgroupId: 7,
  pid: tgid,
  tgid,
  ppid,
  uid: 0,
  gid: 0,
  pidnsIno: 1,
  mntnsIno: 1,
  comm: 'sh',
})
const exec = (tgid: number, ppid: number): ExecEvent => ({
  kind: 'exec',
  bootNs: 1,
  ...task(tgid, ppid),
  parentComm: 'x',
  filename: '/bin/sh',
  args: [],
  argsTotalBytes: 0,
  argsTruncated: false,
  filenameTruncated: false,
  argsReadFailed: false,
})
const fork = (tgid: number, child: number): ForkEvent => ({
  kind: 'fork',
  bootNs: 1,
  ...task(tgid, 1),
  childPid: child,
  childTgid: child,
})
const exit = (tgid: number): ExitEvent => ({
  kind: 'exit',
  bootNs: 1,
  ...task(tgid, 1),
  durationNs: 1,
  durationFromFork: false,
  exitCode: 0,
  signal: 0,
  coreDumped: false,
})

describe('SessionTracker', () => {
  const options = { maxContainers: 10, maxProcesses: 100 }
  const none = () => '/nonexistent/cgroup.procs'

  it('the container’s own tree has no session; a process entering from outside starts one', () => {
    const t = new SessionTracker(options)
    assert.equal(t.observe(exec(100, 50), 7, none), undefined, 'the main process')
    assert.equal(t.observe(fork(100, 101), 7, none), undefined)
    assert.equal(t.observe(exec(101, 100), 7, none), undefined, 'its child')
    // runc exec: `runc init` (not a member) forks into the pid namespace, the child execs.
    assert.equal(t.observe(fork(200, 201), 7, none), undefined)
    const session = t.observe(exec(201, 200), 7, none)
    assert.ok(session, 'a session starts')
    assert.equal(t.observe(fork(201, 202), 7, none), session)
    assert.equal(t.observe(exec(202, 201), 7, none), session, 'descendants carry it')
    assert.equal(t.observe(exit(202), 7, none), session)
    assert.equal(t.observe(exit(201), 7, none), session, 'its end')
    const second = t.observe(exec(300, 299), 7, none)
    assert.ok(second && second !== session, 'the next exec is a new session')
    assert.equal(t.observe(exec(102, 100), 7, none), undefined, 'missed fork: parent decides')
    assert.equal(t.stats().sessions, 2)
  })

  it('a container first seen running is seeded from cgroup.procs and /proc', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-sessions-'))
    try {
      const procs = () => join(dir, 'cgroup.procs')
      writeFileSync(procs(), `${process.pid}\n`)
      const t = new SessionTracker(options)
      assert.equal(t.observe(exec(process.pid, 1), 9, procs), undefined, 'the main process')
      assert.ok(t.observe(exec(400, 1), 9, procs), 'an outsider is a session')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('seeding from ancestry: the main tree has none, each entry from outside opens one', () => {
    const p = (tgid: number, ppid: number, startTicks: number, pidnsInit = false) => ({
      tgid,
      ppid,
      startTicks,
      pidnsInit,
    })
    let n = 0
    const next = () => `s${++n}`
    const cases: {
      name: string
      procs: ReturnType<typeof p>[]
      want: [number, string | null][]
    }[] = [
      {
        name: 'the oldest process entered from outside is the main one',
        procs: [p(300, 299, 50), p(100, 90, 10), p(101, 100, 11), p(301, 300, 51)],
        want: [
          [100, null],
          [101, null],
          [300, 's1'],
          [301, 's1'],
        ],
      },
      {
        name: 'the init of a pid namespace is the main one, whatever its age',
        procs: [p(500, 1, 5), p(600, 590, 9, true), p(601, 600, 10), p(502, 500, 11)],
        want: [
          [500, 's1'],
          [600, null],
          [601, null],
          [502, 's1'],
        ],
      },
      {
        name: 'two sessions open at once get two ids; a grandchild inherits',
        procs: [p(10, 1, 1), p(20, 2, 2), p(30, 3, 3), p(31, 30, 4), p(32, 31, 5)],
        want: [
          [10, null],
          [20, 's1'],
          [30, 's2'],
          [31, 's2'],
          [32, 's2'],
        ],
      },
      {
        name: 'equal start ticks: the lower pid is the main one',
        procs: [p(71, 1, 7), p(70, 1, 7)],
        want: [
          [70, null],
          [71, 's1'],
        ],
      },
      {
        name: 'a later pid namespace inside the container (a sandbox in a session) is not the main one',
        procs: [p(800, 799, 20, true), p(801, 800, 21), p(900, 1, 30), p(901, 900, 31, true)],
        want: [
          [800, null],
          [801, null],
          [900, 's1'],
          [901, 's1'],
        ],
      },
      { name: 'empty', procs: [], want: [] },
    ]
    for (const c of cases) {
      n = 0
      const got = seedMembers(c.procs, next)
      assert.deepEqual(
        [...got].sort((a, b) => a[0] - b[0]),
        [...c.want].sort((a, b) => a[0] - b[0]),
        c.name,
      )
    }
  })

  it('primed with the read at start: a shell already open keeps its session, later commands join it', () => {
    const t = new SessionTracker({
      ...options,
      readProcs: () => assert.fail('primed containers are not read again'),
    })
    t.prime([
      { tgid: 100, ppid: 50, startTicks: 1, pidnsInit: true, cgroupId: 7 },
      { tgid: 200, ppid: 199, startTicks: 9, pidnsInit: false, cgroupId: 7 },
      { tgid: 201, ppid: 200, startTicks: 9, pidnsInit: false, cgroupId: 7 },
    ])
    assert.equal(t.observe(exec(100, 50), 7, none), undefined)
    const session = t.observe(exec(200, 199), 7, none)
    assert.ok(session)
    assert.equal(t.observe(exec(201, 200), 7, none), session)
    t.prime(undefined)
    assert.equal(t.observe(fork(200, 202), 7, none), session)
    assert.equal(t.observe(exec(202, 200), 7, none), session, 'a command after the start')
    assert.equal(t.stats().sessions, 1)
  })

  it('is bounded in containers and processes', () => {
    const t = new SessionTracker({ maxContainers: 2, maxProcesses: 3 })
    for (let c = 1; c <= 5; c++) t.observe(exec(10, 1), c, none)
    assert.equal(t.stats().containers, 2)
  })
})
