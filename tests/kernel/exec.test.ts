// Real BPF on the real kernel: process exec, exit and fork.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { isRoot, startCapture } from '../support/capture.ts'
import { createCgroup, type TestCgroup } from '../support/cgroup.ts'

const skip = isRoot() ? false : 'needs root to load BPF programs'

describe('exec capture', { skip }, () => {
  let cg: TestCgroup
  let run: ReturnType<typeof startCapture>

  before(() => {
    cg = createCgroup('exec')
    run = startCapture({ families: 'exec' })
  })
  after(async () => {
    await run?.capture.stop()
    await cg?.remove()
  })

  it('sees /bin/sh -c "exit 3" with its argv, parent, cgroup, exit code and duration', async () => {
    const marker = `ebbflow-marker-${randomUUID()}`
    const result = await cg.run(['/bin/sh', '-c', 'exit 3', marker])
    assert.equal(result.code, 3)
    const { sink } = run
    await sink.waitFor(
      () => sink.of('exit').some((e) => e.tgid === result.pid),
      10_000,
      `the exit of pid ${result.pid}`,
    )
    // The wrapper that moved itself into the cgroup carries the marker too, from outside it.
    const execs = sink.of('exec').filter((e) => e.args.includes(marker) && e.cgroupId === cg.id)
    assert.equal(execs.length, 1, 'exactly one exec in the cgroup carries the marker')
    const exec = execs[0]!
    assert.equal(exec.filename, '/bin/sh')
    assert.deepEqual(exec.args, ['/bin/sh', '-c', 'exit 3', marker])
    assert.equal(exec.argsTruncated, false)
    assert.equal(exec.tgid, result.pid)
    assert.equal(exec.pid, result.pid)
    assert.equal(exec.ppid, process.pid, 'the parent is this test process')
    assert.equal(exec.cgroupId, cg.id, 'the cgroup id is the cgroup directory inode')
    assert.equal(exec.uid, process.getuid!())
    assert.equal(exec.gid, process.getgid!())
    assert.equal(exec.comm, 'sh')
    // Node forks its children from its main thread, whose name is this process's comm.
    assert.equal(exec.parentComm, readFileSync('/proc/self/comm', 'utf8').trim())
    // The child shares this process's namespaces: the inodes of its /proc/self/ns links.
    assert.equal(exec.pidnsIno, statSync('/proc/self/ns/pid').ino)
    assert.equal(exec.mntnsIno, statSync('/proc/self/ns/mnt').ino)

    const exit = sink.of('exit').find((e) => e.tgid === result.pid)!
    assert.equal(exit.exitCode, 3)
    assert.equal(exit.signal, 0)
    assert.equal(exit.cgroupId, cg.id)
    // The exit's task fields are the exec's: the same process, read at its end.
    for (const k of ['pid', 'ppid', 'uid', 'gid', 'pidnsIno', 'mntnsIno', 'comm'] as const)
      assert.equal(exit[k], exec[k], `exit ${k}`)
    assert.equal(exit.durationFromFork, false, 'duration is measured from the exec')
    assert.ok(exit.durationNs > 0 && exit.durationNs < 5e9, `duration ${exit.durationNs} ns`)
    assert.ok(exit.bootNs >= exec.bootNs)
    assert.equal(exit.durationNs, exit.bootNs - exec.bootNs)
  })

  it('sees a fork with the child pid and an exit by signal', async () => {
    const marker = `ebbflow-marker-${randomUUID()}`
    // The shell forks a child that kills itself with SIGKILL; the shell reports 137.
    const result = await cg.run(['/bin/sh', '-c', `/bin/sh -c 'kill -9 $$' ${marker}; exit 0`])
    assert.equal(result.code, 0)
    const { sink } = run
    await sink.waitFor(
      () => sink.of('exit').some((e) => e.cgroupId === cg.id && e.signal === 9),
      10_000,
      'an exit by SIGKILL',
    )
    const killed = sink.of('exec').find((e) => e.args.includes(marker) && e.cgroupId === cg.id)!
    const fork = sink.of('fork').find((e) => e.childTgid === killed.tgid)
    assert.ok(fork, 'the fork that made the killed child was seen')
    assert.equal(fork.tgid, result.pid, 'forked by the outer shell')
    assert.equal(fork.cgroupId, cg.id)
    // The forking shell's own fields: a child of this test process, in its namespaces.
    assert.equal(fork.ppid, process.pid)
    assert.equal(fork.comm, 'sh')
    assert.equal(fork.uid, process.getuid!())
    assert.equal(fork.pidnsIno, statSync('/proc/self/ns/pid').ino)
    const exit = sink.of('exit').find((e) => e.tgid === killed.tgid)!
    assert.equal(exit.signal, 9)
    assert.equal(exit.exitCode, 0)
  })
})

describe('short-lived processes', { skip }, () => {
  it('captures 2,000 execs of /bin/true: captured + dropped = 2,000', async () => {
    const cg = createCgroup('storm')
    const run = startCapture({ families: 'exec' })
    try {
      const result = await cg.run([
        '/bin/sh',
        '-c',
        'i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done',
      ])
      assert.equal(result.code, 0)
      const { sink, capture } = run
      const trueExecs = () =>
        sink.of('exec').filter((e) => e.cgroupId === cg.id && e.filename === '/bin/true')
      await sink.waitFor(
        () => sink.of('exit').some((e) => e.tgid === result.pid),
        20_000,
        'the loop to end',
      )
      capture.pollCounters()
      const dropped = sink
        .of('drops')
        .filter((d) => d.family === 'exec')
        .reduce((n, d) => n + d.count, 0)
      await sink.waitFor(() => trueExecs().length + dropped >= 2000, 10_000, '2,000 execs')
      const captured = trueExecs().length
      if (dropped === 0) assert.equal(captured, 2000)
      else assert.equal(captured + dropped, 2000, `captured ${captured}, dropped ${dropped}`)
      // Every one of them also exited, with a duration.
      const exits = sink.of('exit').filter((e) => e.cgroupId === cg.id && e.comm === 'true')
      if (dropped === 0) assert.equal(exits.length, 2000)
      assert.ok(exits.every((e) => e.durationNs > 0 && !e.durationFromFork))
    } finally {
      await run.capture.stop()
      await cg.remove()
    }
  })
})
