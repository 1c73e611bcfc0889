// `kubectl exec` sessions through the whole collector (real kernel capture, the /proc read at
// start, enrichment against a real kube-apiserver, cgroups in kubelet's layout): a shell
// entering a pod's container from outside its process tree, and its commands, carry one session
// id; the container's main process and its children carry none. Once with the collector
// running first, once with the shell (and a command of it) already running when it starts.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readlinkSync, realpathSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import {
  announceRunningProcesses,
  type Collector,
  KernelCapture,
  loadCollectorConfig,
  loadEnrichConfig,
  StartScanDedup,
  startCollector,
} from '@ebbflow/collector'
import {
  type CapturedEvent,
  createLogger,
  type ExecEvent,
  type ExitEvent,
  type ForkEvent,
} from '@ebbflow/common'
import { bootTimeNs } from '@ebbflow/native'
import { isRoot, RecordingSink } from '../support/capture.ts'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'
import { kubeletCgroup, readLines } from '../support/kubelet-cgroup.ts'

const NODE = 'node-under-test'
const POD = 'web-5d8f7c9b4-q7x2z'
const logger = createLogger('test', 'silent')
const skip = isRoot() ? false : 'needs root to load BPF programs and create cgroups'

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** One server for the file, started by the first test that needs it. */
let kube: KubeApiServer | undefined

/**
 * A pod on the real API server, bound to this node with one container reported running, and
 * its cgroup; `remove()` deletes the pod so the next test can use the same name.
 */
async function podWithContainer() {
  kube ??= KubeApiServer.start()
  const server = kube
  const containerId = randomBytes(32).toString('hex')
  const created = await server.createPod({
    name: POD,
    namespace: 'shop',
    nodeName: NODE,
    owner: { kind: 'ReplicaSet', name: 'web-5d8f7c9b4' },
    containers: [{ name: 'web', id: containerId, image: 'ghcr.io/shop/web:2' }],
  })
  const cg = kubeletCgroup(created.metadata!.uid!, containerId)
  const pod = { kubeconfig: server.kubeconfig, remove: () => server.deletePod('shop', POD) }
  return { pod, cg, containerId }
}

function collector(kubeconfig: string, sink: RecordingSink): Collector {
  return startCollector(
    loadCollectorConfig(
      { families: 'exec', nodeName: NODE, flushMs: '10', counterIntervalMs: '3600000' },
      {},
    ),
    loadEnrichConfig({ kubeconfig, kubeBackoffMs: '50' }, {}),
    sink,
    logger,
  )
}

/** The exec-family events of one cgroup the sink received. */
function eventsOf(sink: RecordingSink, cgroupId: number) {
  const mine = (e: CapturedEvent) => 'cgroupId' in e && e.cgroupId === cgroupId
  return {
    execs: () => sink.of('exec').filter(mine) as ExecEvent[],
    forks: () => sink.of('fork').filter(mine) as ForkEvent[],
    exits: () => sink.of('exit').filter(mine) as ExitEvent[],
  }
}

describe('kubectl exec sessions through the collector', {
  skip: skip || (kubeApiServerUnavailable() ?? false),
  timeout: 120_000,
}, () => {
  after(() => kube?.stop())

  it('a shell entering after the collector started: it and its three commands share one session', async () => {
    const { pod, cg, containerId } = await podWithContainer()
    const sink = new RecordingSink()
    const c = collector(pod.kubeconfig, sink)
    const tag = randomUUID()
    // Killed once, in `finally`, while still running: never a pid that may have been reused.
    const children: ChildProcess[] = []
    try {
      await until(
        'the pod in the cache',
        () => c.enrichment.pods!.byContainerId(containerId) !== undefined,
      )
      const ev = eventsOf(sink, cg.id)
      // The container's main process runs a child of its own, then stays.
      const main = cg.enter(['/bin/sh', '-c', `/bin/true own-${tag}; exec /bin/sleep 60`])
      children.push(main)
      await sink.waitFor(
        () => ev.execs().some((e) => e.tgid === main.pid && e.args[0] === '/bin/sleep'),
        10_000,
        'the main process',
      )
      const shell = cg.enter(['/bin/sh', '-s'])
      children.push(shell)
      const commands = [
        { argv: ['/bin/echo', `one-${tag}`], code: 0 },
        { argv: ['/bin/true', `two-${tag}`], code: 0 },
        { argv: ['/bin/sh', '-c', 'exit 3', `three-${tag}`], code: 3 },
      ]
      const quote = (a: string) => `'${a}'`
      shell.stdin.end(`${commands.map((k) => k.argv.map(quote).join(' ')).join('\n')}\nexit 0\n`)
      await sink.waitFor(
        () => ev.exits().some((e) => e.tgid === shell.pid),
        10_000,
        'the shell’s exit',
      )

      const shellExec = ev.execs().find((e) => e.tgid === shell.pid)
      assert.ok(shellExec, 'the shell’s exec in the container')
      assert.deepEqual(shellExec.args, ['/bin/sh', '-s'])
      const session = shellExec.meta?.session
      assert.ok(session, 'the shell entering from outside opens a session')
      assert.equal(shellExec.meta?.pod, POD)
      assert.equal(shellExec.meta?.namespace, 'shop')

      const commandTgids: number[] = []
      for (const k of commands) {
        const e = ev.execs().filter((x) => x.args.join(' ') === k.argv.join(' '))
        assert.equal(e.length, 1, `one exec of ${k.argv.join(' ')}`)
        assert.equal(e[0]!.ppid, shell.pid, 'run by the shell')
        assert.equal(e[0]!.meta?.session, session, `${k.argv.join(' ')} is in the session`)
        const exit = ev.exits().find((x) => x.tgid === e[0]!.tgid)
        assert.ok(exit, `the exit of ${k.argv.join(' ')}`)
        assert.equal(exit.exitCode, k.code)
        assert.equal(exit.meta?.session, session, 'its exit too')
        commandTgids.push(e[0]!.tgid)
      }
      const shellForks = ev.forks().filter((f) => f.tgid === shell.pid)
      assert.deepEqual(
        shellForks.map((f) => f.childTgid).sort(),
        [...commandTgids].sort(),
        'the shell forked each command',
      )
      for (const f of shellForks) assert.equal(f.meta?.session, session, 'the forks carry it')
      assert.equal(ev.exits().find((e) => e.tgid === shell.pid)?.meta?.session, session)

      // The container's own: the main process and its child, no session.
      const own = ev.execs().filter((e) => e.tgid === main.pid || e.args.includes(`own-${tag}`))
      assert.equal(own.length, 3, 'the main process’s two execs (sh, then sleep) and its child’s')
      for (const e of own) {
        assert.equal(e.meta?.session, undefined, 'the container’s own processes have none')
        assert.equal(e.meta?.pod, POD)
      }
      const ownChild = own.find((e) => e.args.includes(`own-${tag}`))!
      assert.equal(ev.exits().find((e) => e.tgid === ownChild.tgid)?.meta?.session, undefined)
    } finally {
      killAll(children)
      await c.stop()
      await pod.remove()
      await cg.remove()
    }
  })

  it('a shell already open when the collector starts: read from /proc with its session, and its next commands join it', async () => {
    const { pod, cg, containerId } = await podWithContainer()
    const sink = new RecordingSink()
    const tag = randomUUID()
    let c: Collector | undefined
    const children: ChildProcess[] = []
    const extraPids: number[] = []
    try {
      const main = cg.enter(['/bin/sh', '-c', `/bin/sleep 61 & echo $!; wait`])
      children.push(main)
      const [mainChild] = (await readLines(main.stdout, 1)).map(Number)
      extraPids.push(mainChild!)
      const beforeShell = bootTimeNs()
      const shell = cg.enter(['/bin/sh', '-s'])
      children.push(shell)
      shell.stdin.write(`/bin/sleep 62 & echo $!\n`)
      const [shellChild] = (await readLines(shell.stdout, 1)).map(Number)
      extraPids.push(shellChild!)
      const afterShell = bootTimeNs()
      await until('all four processes in the cgroup', () => cg.procs().length === 4)

      c = collector(pod.kubeconfig, sink)
      assert.ok(c.procScan && c.procScan.processes >= 4, 'the read at start counted them')
      const ev = eventsOf(sink, cg.id)
      const pids = [main.pid!, mainChild!, shell.pid!, shellChild!]
      await sink.waitFor(
        () => pids.every((p) => ev.execs().some((e) => e.tgid === p && e.seenAtStart)),
        10_000,
        'the four processes read at start',
      )
      const at = (pid: number) => {
        const e = ev.execs().filter((x) => x.tgid === pid)
        assert.equal(e.length, 1, `one exec event for ${pid}, not one read and one captured`)
        assert.equal(e[0]!.seenAtStart, true)
        assert.equal(e[0]!.meta?.pod, POD, 'named after the pod')
        assert.equal(e[0]!.meta?.container, 'web')
        assert.equal(e[0]!.meta?.containerId, containerId)
        assert.equal(e[0]!.uid, process.getuid!())
        return e[0]!
      }
      const sh = realpathSync('/bin/sh')
      const sleep = realpathSync('/bin/sleep')
      const m = at(main.pid!)
      assert.deepEqual(m.args, ['/bin/sh', '-c', '/bin/sleep 61 & echo $!; wait'])
      assert.equal(m.filename, sh)
      assert.equal(m.ppid, process.pid)
      assert.equal(m.meta?.session, undefined, 'the main process has no session')
      const mc = at(mainChild!)
      assert.deepEqual(mc.args, ['/bin/sleep', '61'])
      assert.equal(mc.filename, sleep)
      assert.equal(mc.ppid, main.pid)
      assert.equal(mc.meta?.session, undefined, 'nor its child')
      const s = at(shell.pid!)
      assert.deepEqual(s.args, ['/bin/sh', '-s'])
      assert.equal(s.ppid, process.pid)
      assert.equal(s.argsTotalBytes, Buffer.byteLength('/bin/sh\0-s\0'))
      assert.equal(s.argsTruncated, false)
      // /proc gives the start in clock ticks (10 ms): at most one tick before the spawn.
      assert.ok(
        s.bootNs >= beforeShell - 10_000_000 && s.bootNs <= afterShell,
        `started between ${beforeShell} and ${afterShell}, read ${s.bootNs}`,
      )
      const session = s.meta?.session
      assert.ok(session, 'the shell already open is a session')
      const sc = at(shellChild!)
      assert.deepEqual(sc.args, ['/bin/sleep', '62'])
      assert.equal(sc.ppid, shell.pid)
      assert.equal(sc.meta?.session, session, 'its running command shares it')

      // Commands after the start are captured, in the same session.
      shell.stdin.end(`/bin/true after-${tag}\nexit 0\n`)
      await sink.waitFor(
        () => ev.exits().some((e) => e.tgid === shell.pid),
        10_000,
        'the shell’s exit',
      )
      const later = ev.execs().filter((e) => e.args.includes(`after-${tag}`))
      assert.equal(later.length, 1)
      assert.equal(later[0]!.seenAtStart, undefined, 'captured, not read')
      assert.equal(later[0]!.meta?.session, session)
      assert.equal(ev.exits().find((e) => e.tgid === later[0]!.tgid)?.meta?.session, session)
      assert.equal(ev.exits().find((e) => e.tgid === shell.pid)?.meta?.session, session)
    } finally {
      killAll(children)
      for (const pid of extraPids) process.kill(pid, 'SIGKILL')
      await c?.stop()
      await pod.remove()
      await cg.remove()
    }
  })
  it('a runtime helper stays in the cgroup as the shell’s parent (runc exec’s shape), opened before and after the start', async () => {
    const { pod, cg } = await podWithContainer()
    const sink = new RecordingSink()
    const tag = randomUUID()
    let c: Collector | undefined
    const children: ChildProcess[] = []
    // The helper enters the cgroup and forks the shell there, staying its parent.
    const open = async () => {
      const helper = cg.enter(['/bin/sh', '-c', '/bin/sh -s; exit $?'])
      children.push(helper)
      helper.stdin.write('echo $$\n')
      const [shell] = (await readLines(helper.stdout, 1)).map(Number)
      return { helper, shell: shell! }
    }
    try {
      const main = cg.enter(['/bin/sleep', '63'])
      children.push(main)
      const early = await open()
      c = collector(pod.kubeconfig, sink)
      const late = await open()
      early.helper.stdin.end(`/bin/true early-${tag}\nexit 0\n`)
      late.helper.stdin.end(`/bin/true late-${tag}\nexit 0\n`)
      const ev = eventsOf(sink, cg.id)
      await sink.waitFor(
        () =>
          [early.helper.pid, late.helper.pid].every((pid) =>
            ev.exits().some((e) => e.tgid === pid),
          ),
        10_000,
        'both helpers’ exits',
      )
      const sessionOf = (pred: (e: ExecEvent) => boolean) => {
        const found = ev.execs().filter(pred)
        assert.ok(found.length > 0)
        return found[0]!.meta?.session
      }
      const earlySession = sessionOf((e) => e.tgid === early.shell)
      const lateSession = sessionOf((e) => e.tgid === late.shell)
      assert.ok(earlySession, 'the shell open before the start is in a session')
      assert.ok(lateSession, 'the shell opened after it too')
      assert.notEqual(earlySession, lateSession)
      assert.equal(
        sessionOf((e) => e.args.includes(`early-${tag}`)),
        earlySession,
      )
      assert.equal(
        sessionOf((e) => e.args.includes(`late-${tag}`)),
        lateSession,
      )
      assert.equal(
        sessionOf((e) => e.tgid === main.pid),
        undefined,
        'the main process has none',
      )
    } finally {
      killAll(children)
      await c?.stop()
      await pod.remove()
      await cg.remove()
    }
  })
})

function killAll(list: ChildProcess[]): void {
  for (const c of list) c.kill('SIGKILL')
}

describe('the /proc read at start against the capture', { skip, timeout: 30_000 }, () => {
  it('a process that exec’d between the attach and the read is told once', async () => {
    const sink = new RecordingSink()
    const dedup = new StartScanDedup(sink)
    const config = loadCollectorConfig(
      { families: 'exec', flushMs: '10', counterIntervalMs: '3600000' },
      {},
    )
    const capture = KernelCapture.start(config, dedup, logger)
    let child: ChildProcess | undefined
    try {
      // spawn returns once /bin/sh is exec'd; the shell then execs sleep: both after the
      // attach. The read waits for the second image, in the same synchronous run as
      // startCollector's, so no captured batch is handed over before it.
      child = spawn('/bin/sh', ['-c', 'exec /bin/sleep 30'], { stdio: 'ignore' })
      const pid = child.pid!
      const sleep = realpathSync('/bin/sleep')
      const deadline = Date.now() + 5000
      const exe = () => {
        try {
          return readlinkSync(`/proc/${pid}/exe`)
        } catch {
          return ''
        }
      }
      while (exe() !== sleep) {
        if (Date.now() > deadline) throw new Error('the child never exec’d sleep')
      }
      const stats = announceRunningProcesses(
        config,
        dedup,
        { seenAtStart: (events) => sink.records(events, 'exec') },
        logger,
      )
      assert.ok(stats && stats.processes > 0)
      child.kill('SIGKILL')
      // Its exit is captured after both execs: once it is here, so is everything before it.
      await sink.waitFor(
        () => sink.of('exit').some((e) => e.tgid === pid),
        10_000,
        'the child’s exit',
      )
      const execs = sink.of('exec').filter((e) => e.tgid === pid)
      assert.deepEqual(
        execs.map((e) => [e.args, e.seenAtStart ?? false]),
        [
          [['/bin/sleep', '30'], true],
          [['/bin/sh', '-c', 'exec /bin/sleep 30'], false],
        ],
        'the read’s event, then the shell’s captured exec; the captured exec of sleep is dropped',
      )
      assert.ok(dedup.dropped >= 1, 'counted (other processes may exec in the window too)')
    } finally {
      child?.kill('SIGKILL')
      await capture.stop()
    }
  })
})
