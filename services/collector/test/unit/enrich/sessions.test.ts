// Exec sessions from fork/exec/exit events in capture order.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { ExecEvent, ExitEvent, ForkEvent } from '@ebbflow/common'
import { SessionTracker } from '../../../src/enrich/sessions.ts'

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

  it('a container first seen running is seeded from cgroup.procs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-sessions-'))
    try {
      const procs = () => join(dir, 'cgroup.procs')
      writeFileSync(procs(), '100\n101\n')
      const t = new SessionTracker(options)
      assert.equal(t.observe(exec(101, 100), 9, procs), undefined)
      assert.ok(t.observe(exec(400, 1), 9, procs), 'an outsider is a session')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is bounded in containers and processes', () => {
    const t = new SessionTracker({ maxContainers: 2, maxProcesses: 3 })
    for (let c = 1; c <= 5; c++) t.observe(exec(10, 1), c, none)
    assert.equal(t.stats().containers, 2)
  })
})
