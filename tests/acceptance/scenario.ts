// The acceptance scenario shared by both modes (embedded.test.ts, distributed.test.ts): two pods
// in two namespaces, created on a real kube-apiserver (the collector reads them with a token of
// its own ServiceAccount, bound by infra/k8s/collector-rbac.yaml), real processes in their container
// cgroups laid out as kubelet's systemd driver lays them out, real sockets on addresses and ports
// the test chose. The test runs the scenario once, then asks every GraphQL root field about it
// and compares the answers with what it did itself (the commands it ran, the bytes it sent, the
// ports it bound, the pids it started) — never with values the implementation computed.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildSchema } from '@ebbflow/api/schema'
import { findCgroup2Mount } from '@ebbflow/common'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { KubeApiServer, kubeApiServerUnavailable } from '../support/kube-apiserver.ts'
import { Proc, until } from '../support/proc.ts'

/** The built-in rule the scenario's `kubectl exec`-like shell fires. */
export const SHELL_RULE = 'InteractiveShellInContainer'

export { Proc, until }

export const root = join(import.meta.dirname, '../..')
export const bin = join(root, 'bin/ebbflow')
const peer = join(import.meta.dirname, 'peer.ts')
const seccompRun = join(root, 'tests/support/seccomp-run.py')
/** Debian's interpreter: python3-seccomp is installed for it (scripts/setup.sh). */
const python = '/usr/bin/python3'

/** How often the collectors under test read their counters (traffic, syscalls, drops). */
export const COUNTER_INTERVAL_MS = 500
/** Payload bytes of the TCP exchange, different each way so a swap shows. */
const CLIENT_SENDS = 12_345
const SERVER_SENDS = 23_456
/** The uid the exec session runs as (as `kubectl exec` into a container running as 4242). */
const SESSION_UID = 4242
/** A syscall the profiled workload (sha256sum of a file) never makes; harmless if it ran. */
const NEVER_CALLED = 'getpriority'
/** IPv4 header + the largest TCP header: the most a packet adds to the payload it carries. */
const MAX_HEADER_BYTES = 20 + 60
/** Generous bound on packets (segments and ACKs) of one small exchange on loopback, each way. */
const MAX_PACKETS = 64

// ---- small tools ---------------------------------------------------------------------------

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => {
      const a = s.address()
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

// ---- the world: pods, cgroups, addresses, tokens ---------------------------------------------

export interface Container {
  name: string
  id: string
  /** The container's cgroup directory. */
  path: string
}

export interface PodInfo {
  /** Given by the API server. */
  uid: string
  name: string
  namespace: string
  labels: Record<string, string>
  ip: string
  containers: Record<string, Container>
  /** Its controller (the ReplicaSet of a Deployment), if any. */
  owner?: { kind: string; name: string }
  serviceAccount: string
  /** Container requests: without limits they make the pod Burstable. */
  requests: Record<string, string>
}

const RBAC_FILE = join(root, 'infra/k8s/collector-rbac.yaml')
/** Where the collector's ServiceAccount lives (infra/k8s). */
const COLLECTOR_NS = 'ebbflow'
const COLLECTOR_SA = 'ebbflow-collector'

/** Starts argv inside a container's cgroup, from this process (the wrapper joins, then execs). */
function startIn(c: Container, argv: string[]): Proc {
  return new Proc(
    spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', c.path, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  )
}

export class World {
  readonly mode: string
  readonly tag = randomBytes(3).toString('hex')
  readonly node: string
  /** The node of the short collector run with a tiny ring buffer (forced loss). */
  readonly lossNode: string
  readonly dir: string
  readonly tokensFile: string
  readonly adminToken = randomBytes(24).toString('hex')
  readonly tokenA = randomBytes(24).toString('hex')
  kube!: KubeApiServer
  /** The real server, authenticated as the collector's ServiceAccount. */
  kubeconfig!: string
  a!: PodInfo
  b!: PodInfo
  private madeCgroups: string[] = []
  private addresses: string[] = []
  private procs: Proc[] = []

  constructor(mode: string) {
    this.mode = mode
    this.node = `acc-${mode}-${this.tag}`
    this.lossNode = `acc-${mode}-loss-${this.tag}`
    this.dir = mkdtempSync(join(tmpdir(), `ebbflow-acceptance-${mode}-`))
    this.tokensFile = join(this.dir, 'tokens.json')
  }

  /**
   * The shipped shell-in-container rule (infra/alerts), evaluated every `every`: the one
   * built-in rule the scenario's exec session must fire.
   */
  shellRuleFile(every: string): string {
    const pack = parseYaml(
      readFileSync(join(import.meta.dirname, '../../infra/alerts/security.yaml'), 'utf8'),
    ) as { rules: { name: string; every: string }[] }
    const rule = pack.rules.find((r) => r.name === SHELL_RULE)
    assert.ok(rule, `${SHELL_RULE} is in the built-in rule pack`)
    const file = join(this.dir, `rules-${every}.yaml`)
    writeFileSync(file, stringifyYaml({ rules: [{ ...rule, every }] }))
    return file
  }

  static async create(mode: string): Promise<World> {
    const w = new World(mode)
    try {
      await w.setUp()
    } catch (err) {
      await w.cleanUp()
      throw err
    }
    return w
  }

  private async setUp(): Promise<void> {
    const t = this.tag
    const octet = 1 + (randomBytes(1)[0]! % 250)
    const hash = randomBytes(5).toString('hex').slice(0, 9)
    this.kube = KubeApiServer.start()
    await this.kube.namespace(COLLECTOR_NS)
    await this.kube.kubectlOk(['apply', '-f', RBAC_FILE])
    this.kubeconfig = this.kube.kubeconfigWithToken(
      await this.kube.token(COLLECTOR_NS, COLLECTOR_SA),
      'collector.kubeconfig',
    )
    this.a = await this.pod({
      name: `web-${hash}-${t.slice(0, 5)}`,
      namespace: `acc-a-${t}`,
      labels: { app: 'web', tier: 'front', 'pod-template-hash': hash },
      ip: `10.213.${octet}.1`,
      containers: ['app', 'client'],
      owner: { kind: 'ReplicaSet', name: `web-${hash}` },
      serviceAccount: 'web',
      requests: { cpu: '50m', memory: '32Mi' },
    })
    this.b = await this.pod({
      name: `cache-${t}`,
      namespace: `acc-b-${t}`,
      labels: { app: 'cache' },
      ip: `10.213.${octet}.2`,
      containers: ['server', 'tool'],
      serviceAccount: 'default',
      requests: { memory: '16Mi' },
    })
    writeFileSync(
      this.tokensFile,
      JSON.stringify({ [this.adminToken]: ['*'], [this.tokenA]: [this.a.namespace] }),
    )
    // Pod addresses that are not loopback: the service map and the policies leave loopback out.
    for (const ip of [this.a.ip, this.b.ip]) {
      execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', 'lo'])
      this.addresses.push(ip)
    }
  }

  /**
   * Creates the pod on the server, bound to this world's node with its containers reported
   * running (as the scheduler and kubelet would), then its cgroups under the uid it was given.
   */
  private async pod(o: Omit<PodInfo, 'uid' | 'containers'> & { containers: string[] }) {
    const ids = o.containers.map((name) => ({ name, id: randomBytes(32).toString('hex') }))
    const created = await this.kube.createPod({
      namespace: o.namespace,
      name: o.name,
      nodeName: this.node,
      labels: o.labels,
      ...(o.owner ? { owner: o.owner } : {}),
      serviceAccount: o.serviceAccount,
      podIP: o.ip,
      requests: o.requests,
      containers: ids.map((c) => ({ ...c, image: `registry.example/${c.name}:1` })),
    })
    assert.equal(created.status?.qosClass, 'Burstable', 'the server’s QoS class for requests')
    const uid = created.metadata!.uid!
    const containers: Record<string, Container> = {}
    for (const c of ids) containers[c.name] = { ...c, path: this.cgroup(uid, c.id) }
    return { ...o, uid, containers }
  }

  /** kubelet's systemd driver: slices per QoS class and pod, a scope per container. */
  private cgroup(podUid: string, containerId: string): string {
    let dir = findCgroup2Mount()
    for (const level of [
      'kubepods.slice',
      'kubepods-burstable.slice',
      `kubepods-burstable-pod${podUid.replaceAll('-', '_')}.slice`,
      `cri-containerd-${containerId}.scope`,
    ]) {
      dir = join(dir, level)
      if (!existsSync(dir)) {
        mkdirSync(dir)
        this.madeCgroups.push(dir)
      }
    }
    return dir
  }

  start(c: Container, argv: string[]): Proc {
    return this.track(startIn(c, argv))
  }

  /** A process cleanUp kills if it still runs (services that failed half-way through a start). */
  track(p: Proc): Proc {
    this.procs.push(p)
    return p
  }

  /** Environment of a collector under test: this world's API server, node and counters. */
  collectorEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      KUBECONFIG: this.kubeconfig,
      NODE_NAME: this.node,
      EBBFLOW_KUBERNETES: 'on',
      EBBFLOW_COUNTER_INTERVAL_MS: String(COUNTER_INTERVAL_MS),
      EBBFLOW_LOG_LEVEL: 'info',
      // Every family, the file family (opt-in) included.
      EBBFLOW_FAMILIES: 'exec,net,syscall,file',
    }
  }

  async cleanUp(): Promise<void> {
    for (const p of this.procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    await Promise.all(this.procs.map((p) => p.exited))
    for (const ip of this.addresses.splice(0))
      try {
        execFileSync('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo'])
      } catch {}
    this.kube?.stop()
    // Innermost first; a level someone else uses too (ENOTEMPTY) stays.
    for (const d of this.madeCgroups.reverse()) {
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(d)
          break
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY') break
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    }
    this.madeCgroups = []
    rmSync(this.dir, { recursive: true, force: true })
  }
}

// ---- the scenario ------------------------------------------------------------------------------

export interface Facts {
  /** Before anything ran (with a second of slack for the collectors' clocks). */
  from: string
  marker: string
  main: { pid: number; args: string[] }
  exit3: { args: string[] }
  sleep: { args: string[] }
  session: { pid: number; commands: { filename: string; args: string[]; exitCode: number }[] }
  tcp: {
    clientPid: number
    serverPid: number
    clientComm: string
    serverComm: string
    clientPort: number
    serverPort: number
    startMs: number
    endMs: number
  }
  tool: { pid: number; args: string[]; file: string; expected: string }
}

const SESSION_JOIN = `
import os, sys
# Joins the container's cgroup from outside its process tree, as runc exec does, then drops to
# the session's user and becomes the shell.
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
uid = int(sys.argv[2])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
os.execv("/bin/sh", ["sh"])
`

export async function runScenario(w: World): Promise<Facts> {
  // The collector names events after pods once it has listed them and watches for changes.
  await until(
    'the collector to list and watch pods',
    () => w.kube.openWatches('pods'),
    (n) => n > 0,
    60_000,
    100,
  )
  const from = new Date(Date.now() - 1000).toISOString()
  const marker = `acc-${w.tag}`
  const app = w.a.containers.app!

  // The container's main process: a shell reading commands the test writes to it.
  const mainArgs = ['/bin/sh', '-s', `main-${marker}`]
  const main = w.start(app, mainArgs)
  const exit3 = ['/bin/sh', '-c', 'exit 3', `exec-${marker}`]
  const sleep = ['/bin/sleep', '0.2']
  main.child.stdin!.write(`${exit3.slice(0, 2).join(' ')} 'exit 3' ${exit3[3]}; echo "rc=$?"\n`)
  main.child.stdin!.write(`${sleep.join(' ')}; echo "slept=$?"\n`)
  await main.output(/rc=3\n/, 'the main shell to run exit 3')
  await main.output(/slept=0\n/, 'the main shell to run sleep 0.2')

  // A shell joining the container from outside its tree (kubectl exec), three commands.
  const session = new Proc(
    spawn(python, ['-c', SESSION_JOIN, app.path, String(SESSION_UID)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  )
  const commands = [
    { filename: '/bin/echo', args: ['/bin/echo', `session-${marker}`], exitCode: 0 },
    { filename: '/bin/ls', args: ['/bin/ls', `/nonexistent-${marker}`], exitCode: 2 },
    { filename: '/bin/sh', args: ['/bin/sh', '-c', 'exit 5', `session-${marker}`], exitCode: 5 },
  ]
  session.child.stdin!.end(
    `/bin/echo session-${marker}\n/bin/ls /nonexistent-${marker}\n/bin/sh -c 'exit 5' session-${marker}\nexit 0\n`,
  )
  assert.equal(await session.exit(), 0, session.stderr)
  assert.match(session.stdout, new RegExp(`session-${marker}`))

  // TCP: a server in pod B on a port the test picked, a client in pod A from a port it picked.
  const serverPort = await freePort(w.b.ip)
  const clientPort = await freePort(w.a.ip)
  const startMs = Date.now()
  const server = w.start(w.b.containers.server!, [
    process.execPath,
    peer,
    'server',
    w.b.ip,
    String(serverPort),
    String(SERVER_SENDS),
  ])
  const serverComm = (await server.output(/listening comm=(\S+)/, 'the server to listen'))[1]!
  const client = w.start(w.a.containers.client!, [
    process.execPath,
    peer,
    'client',
    w.a.ip,
    String(clientPort),
    w.b.ip,
    String(serverPort),
    String(CLIENT_SENDS),
  ])
  assert.equal(await client.exit(), 0, client.stderr)
  assert.equal(await server.exit(), 0, server.stderr)
  const endMs = Date.now()
  const clientComm = /connected comm=(\S+)/.exec(client.stdout)?.[1]
  assert.ok(clientComm, client.stdout)
  assert.match(client.stdout, new RegExp(`received ${SERVER_SENDS}\\n`))
  assert.match(server.stdout, new RegExp(`received ${CLIENT_SENDS}\\n`))

  // The profiled workload: a known program in its own container of pod B.
  const file = join(w.dir, 'profiled.bin')
  const content = randomBytes(4096)
  writeFileSync(file, content)
  const toolArgs = ['/usr/bin/sha256sum', file]
  const tool = w.start(w.b.containers.tool!, toolArgs)
  assert.equal(await tool.exit(), 0, tool.stderr)
  const expected = `${createHash('sha256').update(content).digest('hex')}  ${file}\n`
  assert.equal(tool.stdout, expected)

  main.child.stdin!.end('exit 0\n')
  assert.equal(await main.exit(), 0, main.stderr)

  return {
    from,
    marker,
    main: { pid: main.pid, args: mainArgs },
    exit3: { args: exit3 },
    sleep: { args: sleep },
    session: { pid: session.pid, commands },
    tcp: {
      clientPid: client.pid,
      serverPid: server.pid,
      clientComm,
      serverComm,
      clientPort,
      serverPort,
      startMs,
      endMs,
    },
    tool: { pid: tool.pid, args: toolArgs, file, expected },
  }
}

/**
 * The forced loss: an exec storm (300 short processes, many at once, with long argv) in a
 * cgroup of its own, for a collector whose ring buffer is one page.
 */
export async function execStorm(): Promise<void> {
  const dir = join(
    findCgroup2Mount(),
    `ebbflow-acceptance-storm-${process.pid}-${randomBytes(3).toString('hex')}`,
  )
  mkdirSync(dir)
  try {
    const storm = new Proc(
      spawn(
        '/bin/sh',
        [
          '-c',
          'echo $$ > "$0/cgroup.procs" && exec perl -e \'for (1..300) { my $p = fork; if (!$p) { exec "/bin/true", "x" x 1000 } } 1 while wait > 0\'',
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    )
    assert.equal(await storm.exit(120_000), 0, storm.stderr)
  } finally {
    await until(
      'the storm cgroup to empty',
      () => readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim(),
      (s) => s === '',
      10_000,
      20,
    )
    rmdirSync(dir)
  }
}

// ---- asking the API ------------------------------------------------------------------------

export interface GqlResult {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  data?: any
  errors?: { message: string; extensions?: { code?: string } }[]
}

export async function post(
  url: string,
  token: string | undefined,
  query: string,
  variables: object = {},
): Promise<GqlResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  })
  const body = (await res.json()) as Omit<GqlResult, 'status'>
  return { status: res.status, ...body }
}

/** The services of one mode, as the suite needs them. */
export interface Deployment {
  /** How long a check waits for rows to show up once settled. */
  pollMs: number
  /** Waits until everything the scenario did can be read, and returns the GraphQL URL. */
  settle(): Promise<string>
  /** The collectorHealth answer for the loss node (the forced-loss collector run). */
  lossHealth(q: Ask): Promise<unknown>
  stop(): Promise<void>
}

export interface Mode {
  name: 'embedded' | 'distributed'
  skip: string | false
  /** Starts the services for this world; resolves once capture is attached. */
  start(w: World): Promise<Deployment>
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Ask = (query: string, variables?: object, token?: string) => Promise<any>

interface Ctx {
  w: World
  f: Facts
  /** Data of a query with the admin token; errors fail the test. */
  q: Ask
  /** Polls `query` until `ok` holds of its data (rows reach the store within seconds). */
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  poll: (what: string, query: string, variables: object, ok: (d: Row) => boolean) => Promise<any>
  d: Deployment
  url: string
}

interface Check {
  name: string
  /** The Query root fields whose answers it asserts on. */
  fields: string[]
  run(c: Ctx): Promise<void>
}

const EXEC_FIELDS = `time node namespace pod container pid ppid uid comm filename args exitCode
  signal durationNs sessionId`

// biome-ignore lint/suspicious/noExplicitAny: GraphQL answers are checked field by field
type Row = any

const nodesOf = (conn: Row): Row[] => conn.edges.map((e: Row) => e.node)
const ns = (s: number) => s * 1e9

const CHECKS: Check[] = [
  {
    name: 'execEvents meta: namespace, pod, uid, labels, owner, service account and QoS class the API server holds',
    fields: ['execEvents'],
    async run({ w, f, poll }) {
      const query = `query($filter: EventFilter!) { execEvents(filter: $filter, first: 500) {
        edges { node { pid args meta { node namespace pod podUid container containerId labels
          workloadKind workloadName serviceAccount qosClass unresolved } } } } }`
      const expected = (p: PodInfo, container: string) => ({
        node: w.node,
        namespace: p.namespace,
        pod: p.name,
        podUid: p.uid,
        container,
        containerId: p.containers[container]!.id,
        labels: p.labels,
        // A ReplicaSet named <deployment>-<pod-template-hash> is a Deployment's.
        workloadKind: p.owner ? 'Deployment' : 'Pod',
        workloadName: p.owner ? 'web' : p.name,
        serviceAccount: p.serviceAccount,
        qosClass: 'burstable',
        unresolved: false,
      })
      const execOf = async (p: PodInfo, pid: number) => {
        const d = await poll(
          `the exec of pid ${pid} in ${p.namespace}/${p.name}`,
          query,
          { filter: { from: f.from, namespace: p.namespace } },
          (d) => nodesOf(d.execEvents).some((e: Row) => e.pid === pid),
        )
        return nodesOf(d.execEvents).find((e: Row) => e.pid === pid)
      }
      assert.deepEqual((await execOf(w.a, f.main.pid)).meta, expected(w.a, 'app'))
      assert.equal(w.a.owner?.name, `web-${w.a.labels['pod-template-hash']}`)
      assert.deepEqual((await execOf(w.b, f.tool.pid)).meta, expected(w.b, 'tool'))
    },
  },
  {
    name: 'execEvents: argv, exit codes, durations, pids, pods and namespaces of what the test ran',
    fields: ['execEvents'],
    async run({ w, f, poll }) {
      const query = `query($filter: EventFilter!) { execEvents(filter: $filter, first: 500) {
        edges { node { ${EXEC_FIELDS} } } } }`
      const a = nodesOf(
        (
          await poll(
            'the execs of pod A with their exits',
            query,
            { filter: { from: f.from, namespace: w.a.namespace } },
            (d) => {
              const l = nodesOf(d.execEvents)
              return ['exit 3', '0.2'].every((arg) =>
                l.some((e: Row) => e.args.includes(arg) && e.exitCode !== null),
              )
            },
          )
        ).execEvents,
      )
      const find = (args: string[]) =>
        a.filter((e: Row) => JSON.stringify(e.args) === JSON.stringify(args))
      const inPodA = { node: w.node, namespace: w.a.namespace, pod: w.a.name, container: 'app' }

      const main = find(f.main.args)
      assert.equal(main.length, 1, `the main shell once: ${JSON.stringify(a)}`)
      assert.deepEqual(
        {
          ...pick(main[0], ['node', 'namespace', 'pod', 'container', 'pid', 'filename']),
          sessionId: main[0].sessionId,
        },
        { ...inPodA, pid: f.main.pid, filename: '/bin/sh', sessionId: null },
      )
      const exit3 = find(f.exit3.args)
      assert.equal(exit3.length, 1, JSON.stringify(a))
      assert.deepEqual(
        pick(exit3[0], [
          'node',
          'namespace',
          'pod',
          'container',
          'ppid',
          'filename',
          'exitCode',
          'signal',
          'sessionId',
          'uid',
        ]),
        {
          ...inPodA,
          ppid: f.main.pid,
          filename: '/bin/sh',
          exitCode: 3,
          signal: 0,
          sessionId: null,
          uid: process.getuid!(),
        },
      )
      const sleep = find(f.sleep.args)
      assert.equal(sleep.length, 1, JSON.stringify(a))
      assert.deepEqual(pick(sleep[0], ['ppid', 'exitCode', 'pod', 'namespace']), {
        ppid: f.main.pid,
        exitCode: 0,
        pod: w.a.name,
        namespace: w.a.namespace,
      })
      assert.ok(
        sleep[0].durationNs >= ns(0.2) && sleep[0].durationNs < ns(10),
        `sleep 0.2 lasted ${sleep[0].durationNs} ns`,
      )

      const b = nodesOf(
        (
          await poll(
            'the execs of pod B with their exits',
            query,
            { filter: { from: f.from, namespace: w.b.namespace } },
            (d) => nodesOf(d.execEvents).filter((e: Row) => e.exitCode !== null).length >= 2,
          )
        ).execEvents,
      )
      const tool = b.find((e: Row) => e.pid === f.tool.pid)
      assert.ok(tool, `the sha256sum exec (pid ${f.tool.pid}): ${JSON.stringify(b)}`)
      assert.deepEqual(
        pick(tool, ['args', 'filename', 'exitCode', 'namespace', 'pod', 'container', 'sessionId']),
        {
          args: f.tool.args,
          filename: '/usr/bin/sha256sum',
          exitCode: 0,
          namespace: w.b.namespace,
          pod: w.b.name,
          container: 'tool',
          sessionId: null,
        },
      )
      const server = b.find((e: Row) => e.pid === f.tcp.serverPid)
      assert.ok(server, `the server exec (pid ${f.tcp.serverPid}): ${JSON.stringify(b)}`)
      assert.deepEqual(pick(server, ['filename', 'exitCode', 'pod', 'container']), {
        filename: process.execPath,
        exitCode: 0,
        pod: w.b.name,
        container: 'server',
      })
      assert.deepEqual(server.args.slice(2), [
        'server',
        w.b.ip,
        String(f.tcp.serverPort),
        String(SERVER_SENDS),
      ])
    },
  },
  {
    name: 'execSessions / execSession: the joined shell and its three commands, in order; the main process in none',
    fields: ['execSessions', 'execSession'],
    async run({ w, f, q, poll }) {
      const SESSION = `id node namespace pod container uid startedAt endedAt exitCode commandCount truncated
        commands { pid ppid uid filename args exitCode sessionId }`
      const d = await poll(
        'the session of pod A with its four commands',
        `query($filter: EventFilter!) { execSessions(filter: $filter, first: 50) { edges { node { ${SESSION} } } } }`,
        { filter: { from: f.from, namespace: w.a.namespace } },
        (d) =>
          nodesOf(d.execSessions).some(
            (s: Row) => s.commandCount >= 4 && s.commands.every((c: Row) => c.exitCode !== null),
          ),
      )
      const sessions = nodesOf(d.execSessions)
      assert.equal(sessions.length, 1, `one session in pod A: ${JSON.stringify(sessions)}`)
      const s = sessions[0]
      assert.deepEqual(
        pick(s, [
          'node',
          'namespace',
          'pod',
          'container',
          'uid',
          'commandCount',
          'truncated',
          'exitCode',
        ]),
        {
          node: w.node,
          namespace: w.a.namespace,
          pod: w.a.name,
          container: 'app',
          uid: SESSION_UID,
          commandCount: 4,
          truncated: false,
          exitCode: 0,
        },
      )
      assert.ok(s.endedAt !== null, 'the session ended with its shell')
      const expected = [
        {
          pid: f.session.pid,
          uid: SESSION_UID,
          filename: '/bin/sh',
          args: ['sh'],
          exitCode: 0,
          sessionId: s.id,
        },
        ...f.session.commands.map((c) => ({
          ...c,
          ppid: f.session.pid,
          uid: SESSION_UID,
          sessionId: s.id,
        })),
      ]
      assert.deepEqual(
        s.commands.map((c: Row, i: number) => pick(c, Object.keys(expected[i] ?? {}))),
        expected,
      )
      // The container's own processes: none of them is in a session.
      const execs = nodesOf(
        (
          await q(
            `query($filter: EventFilter!) { execEvents(filter: $filter, first: 500) { edges { node { pid ppid sessionId } } } }`,
            { filter: { from: f.from, namespace: w.a.namespace } },
          )
        ).execEvents,
      )
      const own = execs.filter(
        (e: Row) => e.pid === f.main.pid || e.ppid === f.main.pid || e.pid === f.tcp.clientPid,
      )
      assert.ok(own.length >= 4, `main, its children and the client: ${JSON.stringify(execs)}`)
      assert.deepEqual(
        own.filter((e: Row) => e.sessionId !== null),
        [],
      )

      const one = await q(`query($id: ID!) { execSession(id: $id) { ${SESSION} } }`, { id: s.id })
      assert.deepEqual(one.execSession, s)
    },
  },
  {
    name: 'connections: both ends with the ports the test bound, its payload bytes, pids and pods',
    fields: ['connections'],
    async run({ w, f, poll }) {
      const query = `query($filter: EventFilter!) { connections(filter: $filter, first: 100) { edges { node {
        event role node namespace pod container workloadKind workloadName pid comm sourceAddress sourcePort
        destinationAddress destinationPort bytesSent bytesReceived durationNs } } } }`
      const side = async (p: PodInfo, events: string[]) =>
        nodesOf(
          (
            await poll(
              `${events.join(' and ')} of pod ${p.name}`,
              query,
              { filter: { from: f.from, namespace: p.namespace } },
              (d) => events.every((e) => nodesOf(d.connections).some((c: Row) => c.event === e)),
            )
          ).connections,
        )
      const client = {
        sourceAddress: w.a.ip,
        sourcePort: f.tcp.clientPort,
        destinationAddress: w.b.ip,
        destinationPort: f.tcp.serverPort,
      }
      const inA = {
        node: w.node,
        namespace: w.a.namespace,
        pod: w.a.name,
        container: 'client',
        workloadKind: 'Deployment',
        workloadName: 'web',
        pid: f.tcp.clientPid,
        comm: f.tcp.clientComm,
        role: 'active',
      }
      const a = await side(w.a, ['connect', 'close'])
      const KEYS = [
        'event',
        'role',
        'node',
        'namespace',
        'pod',
        'container',
        'workloadKind',
        'workloadName',
        'pid',
        'comm',
        'sourceAddress',
        'sourcePort',
        'destinationAddress',
        'destinationPort',
        'bytesSent',
        'bytesReceived',
      ]
      assert.deepEqual(
        a.map((c: Row) => pick(c, KEYS)),
        [
          { event: 'connect', ...inA, ...client, bytesSent: 0, bytesReceived: 0 },
          {
            event: 'close',
            ...inA,
            ...client,
            bytesSent: CLIENT_SENDS,
            bytesReceived: SERVER_SENDS,
          },
        ],
      )
      const server = {
        sourceAddress: w.b.ip,
        sourcePort: f.tcp.serverPort,
        destinationAddress: w.a.ip,
        destinationPort: f.tcp.clientPort,
      }
      const inB = {
        node: w.node,
        namespace: w.b.namespace,
        pod: w.b.name,
        container: 'server',
        // A pod without a controller is its own workload.
        workloadKind: 'Pod',
        workloadName: w.b.name,
        pid: f.tcp.serverPid,
        comm: f.tcp.serverComm,
        role: 'passive',
      }
      const b = await side(w.b, ['accept', 'close'])
      assert.deepEqual(
        b.map((c: Row) => pick(c, KEYS)),
        [
          { event: 'accept', ...inB, ...server, bytesSent: 0, bytesReceived: 0 },
          {
            event: 'close',
            ...inB,
            ...server,
            bytesSent: SERVER_SENDS,
            bytesReceived: CLIENT_SENDS,
          },
        ],
      )
      const lasted = (f.tcp.endMs - f.tcp.startMs) * 1e6
      for (const close of [...a, ...b].filter((c: Row) => c.event === 'close'))
        assert.ok(
          close.durationNs > 0 && close.durationNs <= lasted,
          `duration ${close.durationNs} ns of at most ${lasted}`,
        )
    },
  },
  {
    name: 'serviceMap: the edge between the two workloads with the port, one connection and the bytes',
    fields: ['serviceMap'],
    async run({ w, f, poll }) {
      const source = `${w.a.namespace}/Deployment/web`
      const target = `${w.b.namespace}/Pod/${w.b.name}`
      const d = await poll(
        'the edge between the pods',
        `query($filter: EventFilter!) { serviceMap(filter: $filter) {
          nodes { id namespace kind name external address }
          edges { source target port connections failedConnections bytesSent bytesReceived } } }`,
        { filter: { from: f.from } },
        (d) => d.serviceMap.edges.some((e: Row) => e.source === source && e.bytesSent > 0),
      )
      const ours = (id: string) =>
        id.startsWith(`${w.a.namespace}/`) || id.startsWith(`${w.b.namespace}/`)
      assert.deepEqual(
        d.serviceMap.edges.filter((e: Row) => ours(e.source) || ours(e.target)),
        [
          {
            source,
            target,
            port: f.tcp.serverPort,
            connections: 1,
            failedConnections: 0,
            bytesSent: CLIENT_SENDS,
            bytesReceived: SERVER_SENDS,
          },
        ],
      )
      assert.deepEqual(
        d.serviceMap.nodes.filter((n: Row) => ours(n.id)),
        [
          {
            id: source,
            namespace: w.a.namespace,
            kind: 'Deployment',
            name: 'web',
            external: false,
            address: null,
          },
          {
            id: target,
            namespace: w.b.namespace,
            kind: 'Pod',
            name: w.b.name,
            external: false,
            address: null,
          },
        ],
      )
    },
  },
  {
    name: 'trafficSeries: bytes per step of each pod, the payload plus at most a header per packet',
    fields: ['trafficSeries'],
    async run({ w, f, poll }) {
      // Pod A sent the client's payload and received the server's; pod B the other way round.
      for (const [p, sent, received] of [
        [w.a, CLIENT_SENDS, SERVER_SENDS],
        [w.b, SERVER_SENDS, CLIENT_SENDS],
      ] as const) {
        const d = await poll(
          `the traffic of pod ${p.name}`,
          `query($filter: EventFilter!) { trafficSeries(filter: $filter, step: "1s") {
            time ingressBytes egressBytes ingressPackets egressPackets } }`,
          { filter: { from: f.from, namespace: p.namespace, pod: p.name } },
          (d) =>
            sum(d.trafficSeries, 'egressBytes') >= sent &&
            sum(d.trafficSeries, 'ingressBytes') >= received,
        )
        const points = d.trafficSeries
        const out = { bytes: sum(points, 'egressBytes'), packets: sum(points, 'egressPackets') }
        const inn = { bytes: sum(points, 'ingressBytes'), packets: sum(points, 'ingressPackets') }
        for (const [dir, got, payload] of [
          ['egress', out, sent],
          ['ingress', inn, received],
        ] as const) {
          assert.ok(
            got.packets >= 1 && got.packets <= MAX_PACKETS,
            `${p.name} ${dir} packets ${got.packets}`,
          )
          assert.ok(
            got.bytes >= payload && got.bytes <= payload + MAX_HEADER_BYTES * got.packets,
            `${p.name} ${dir}: ${got.bytes} bytes in ${got.packets} packets for a payload of ${payload}`,
          )
        }
        // Each step is counted within one counter interval of when the test moved the bytes.
        for (const point of points.filter((x: Row) => x.ingressBytes + x.egressBytes > 0)) {
          const t = Date.parse(point.time)
          assert.ok(
            t >= Math.floor(f.tcp.startMs / 1000) * 1000 &&
              t <= f.tcp.endMs + COUNTER_INTERVAL_MS + 1000,
            `step ${point.time} outside the exchange ${new Date(f.tcp.startMs).toISOString()}..${new Date(f.tcp.endMs).toISOString()}`,
          )
        }
      }
    },
  },
  {
    name: 'syscallCounts: the profiled workload ran once (one execve, one exit_group)',
    fields: ['syscallCounts'],
    async run({ w, f, poll }) {
      const d = await poll(
        'the syscalls of the tool container',
        `query($filter: EventFilter!) { syscallCounts(filter: $filter, first: 500) { syscall nr count } }`,
        { filter: { from: f.from, namespace: w.b.namespace, pod: w.b.name, container: 'tool' } },
        (d) => d.syscallCounts.some((s: Row) => s.syscall === 'exit_group'),
      )
      const count = (name: string) =>
        d.syscallCounts.find((s: Row) => s.syscall === name) ?? { count: 0 }
      assert.deepEqual(pick(count('execve'), ['nr', 'count']), { nr: 59, count: 1 })
      assert.deepEqual(pick(count('exit_group'), ['nr', 'count']), { nr: 231, count: 1 })
      assert.ok(count('read').count >= 1 && count('write').count >= 1, JSON.stringify(d))
      assert.equal(count(NEVER_CALLED).count, 0)
    },
  },
  {
    name: 'syscallSeries: over time, the profiled workload still ran once (one execve, one exit_group)',
    fields: ['syscallSeries'],
    async run({ w, f, poll }) {
      const d = await poll(
        'the syscalls of the tool container over time',
        `query($filter: EventFilter!) { syscallSeries(filter: $filter, step: "10s") { time syscall count } }`,
        { filter: { from: f.from, namespace: w.b.namespace, pod: w.b.name, container: 'tool' } },
        (d) => d.syscallSeries.some((s: Row) => s.syscall === 'exit_group'),
      )
      const total = (name: string) =>
        d.syscallSeries
          .filter((s: Row) => s.syscall === name)
          .reduce((n: number, s: Row) => n + (s.count as number), 0)
      assert.equal(total('execve'), 1)
      assert.equal(total('exit_group'), 1)
      assert.equal(total(NEVER_CALLED), 0)
      for (const s of d.syscallSeries as Row[])
        assert.equal(Date.parse(s.time as string) % 10_000, 0, `step start ${s.time}`)
    },
  },
  {
    name: 'fileAccess, landlockRuleset: the file the tool read and the binary it ran; a ruleset that lets it read the file',
    fields: ['fileAccess', 'landlockRuleset'],
    async run({ w, f, poll }) {
      const filter = { from: f.from, namespace: w.b.namespace, pod: w.b.name, container: 'tool' }
      const nodes = (d: Row) =>
        (d.fileAccess as { edges: { node: Row }[] }).edges.map((e) => e.node)
      const read = (d: Row) => nodes(d).find((a) => a.path === f.tool.file && a.access === 'read')
      const d = await poll(
        'the files of the tool container',
        `query($filter: EventFilter!) { fileAccess(filter: $filter, first: 500) { edges { node { path access count pids pods containers } } } }`,
        { filter },
        (d) => read(d) !== undefined,
      )
      const r = read(d)!
      assert.deepEqual(pick(r, ['pods', 'containers']), { pods: [w.b.name], containers: ['tool'] })
      assert.ok((r.pids as number[]).includes(f.tool.pid), `read by ${JSON.stringify(r.pids)}`)
      assert.ok((r.count as number) >= 1)
      assert.ok(
        nodes(d).some(
          (a) =>
            a.access === 'exec' && (a.path as string).endsWith(`/${basename(f.tool.args[0]!)}`),
        ),
        `the exec of ${f.tool.args[0]}: ${JSON.stringify(nodes(d))}`,
      )
      const l = await poll(
        'the Landlock ruleset of the tool container',
        `query($ns: String!, $pod: String, $from: DateTime) { landlockRuleset(namespace: $ns, pod: $pod, container: "tool", from: $from) {
          pods rules { path directory allowedAccess covers } } }`,
        { ns: w.b.namespace, pod: w.b.name, from: f.from },
        (d) =>
          d.landlockRuleset.rules.some((x: Row) => (x.covers as string[]).includes(f.tool.file)),
      )
      assert.deepEqual(l.landlockRuleset.pods, [w.b.name])
      const rule = (l.landlockRuleset.rules as Row[]).find((x) =>
        (x.covers as string[]).includes(f.tool.file),
      )!
      assert.ok((rule.allowedAccess as string[]).includes('READ_FILE'), JSON.stringify(rule))
    },
  },
  {
    name: 'seccompProfile: the workload runs again under the OCI profile; a syscall it never made gets EPERM',
    fields: ['seccompProfile'],
    async run({ w, f, poll }) {
      const d = await poll(
        'the profile of the tool container',
        `query($ns: String!, $pod: String, $from: DateTime) { seccompProfile(namespace: $ns, pod: $pod, container: "tool", from: $from) {
          namespace workloadKind workloadName pods container observed defaultAction syscalls { name count } ociProfile } }`,
        { ns: w.b.namespace, pod: w.b.name, from: f.from },
        (d) => d.seccompProfile.syscalls.some((s: Row) => s.name === 'exit_group'),
      )
      const p = d.seccompProfile
      assert.deepEqual(
        pick(p, ['namespace', 'workloadKind', 'workloadName', 'pods', 'container', 'observed']),
        {
          namespace: w.b.namespace,
          workloadKind: 'Pod',
          workloadName: w.b.name,
          pods: [w.b.name],
          container: 'tool',
          observed: true,
        },
      )
      const allowed = p.ociProfile.syscalls.flatMap((r: { names: string[] }) => r.names)
      assert.ok(!allowed.includes(NEVER_CALLED), `${NEVER_CALLED} is not allowed`)
      const file = join(w.dir, 'profile.json')
      writeFileSync(file, JSON.stringify(p.ociProfile))
      const run = async (args: string[]) => {
        const proc = new Proc(
          spawn(python, [seccompRun, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
        )
        return { code: await proc.exit(), stdout: proc.stdout, stderr: proc.stderr }
      }
      const again = await run([file, '--', ...f.tool.args])
      assert.deepEqual(
        again,
        { code: 0, stdout: f.tool.expected, stderr: '' },
        'the workload under its profile',
      )
      assert.equal(
        (await run(['-', '--probe', NEVER_CALLED])).code,
        3,
        `${NEVER_CALLED} runs without the profile`,
      )
      const refused = await run([file, '--probe', NEVER_CALLED])
      assert.equal(
        refused.code,
        0,
        `${NEVER_CALLED} under the profile: exit ${refused.code} (0: EPERM) ${refused.stderr}`,
      )
    },
  },
  {
    name: 'networkPolicy: valid NetworkPolicies admitting exactly the peer and port the test used',
    fields: ['networkPolicy'],
    async run({ w, f, poll }) {
      const query = `query($ns: String!, $pod: String, $from: DateTime) { networkPolicy(namespace: $ns, pod: $pod, from: $from) {
        namespace workloadKind workloadName podSelector manifest
        ingress { peer { kind namespace workload address } ports } egress { peer { kind namespace workload address } ports } } }`
      const a = (
        await poll(
          'the policy of pod A',
          query,
          { ns: w.a.namespace, pod: w.a.name, from: f.from },
          (d) => d.networkPolicy.egress.length > 0,
        )
      ).networkPolicy
      const b = (
        await poll(
          'the policy of pod B',
          query,
          { ns: w.b.namespace, pod: w.b.name, from: f.from },
          (d) => d.networkPolicy.ingress.length > 0,
        )
      ).networkPolicy
      const ports = [{ protocol: 'TCP', port: f.tcp.serverPort }]
      const selectA = { matchLabels: { app: 'web', tier: 'front' } }
      const selectB = { matchLabels: { app: 'cache' } }
      const inNs = (n: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': n } })
      for (const [p, manifest] of [
        [w.a, a.manifest],
        [w.b, b.manifest],
      ] as const) {
        assert.equal(manifest.metadata.namespace, p.namespace)
        new NetworkPolicy(manifest).validate()
      }
      assert.deepEqual(a.manifest.spec, {
        podSelector: selectA,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [{ to: [{ namespaceSelector: inNs(w.b.namespace), podSelector: selectB }], ports }],
      })
      assert.deepEqual(b.manifest.spec, {
        podSelector: selectB,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { from: [{ namespaceSelector: inNs(w.a.namespace), podSelector: selectA }], ports },
        ],
        egress: [],
      })
      assert.deepEqual(pick(a, ['workloadKind', 'workloadName']), {
        workloadKind: 'Deployment',
        workloadName: 'web',
      })
      assert.deepEqual(a.egress[0].peer, {
        kind: 'Pod',
        namespace: w.b.namespace,
        workload: `Pod/${w.b.name}`,
        address: null,
      })
    },
  },
  {
    name: 'collectorHealth: the forced loss shows as exec drops of its node; the main node reports',
    fields: ['collectorHealth'],
    async run({ w, f, q, d }) {
      const loss = (await d.lossHealth(q)) as {
        node: string
        totalDrops: number
        drops: { family: string; reason: string; count: number }[]
      }[]
      assert.equal(loss.length, 1, JSON.stringify(loss))
      assert.equal(loss[0]!.node, w.lossNode)
      const exec = loss[0]!.drops.filter((x) => x.family === 'exec' && x.reason === 'buffer_full')
      assert.ok(exec.length === 1 && exec[0]!.count > 0, `exec drops: ${JSON.stringify(loss[0])}`)
      assert.equal(
        loss[0]!.totalDrops,
        loss[0]!.drops.reduce((n, x) => n + x.count, 0),
      )
      const main = (
        await q(
          `query($node: String) { collectorHealth(node: $node) { node lastSeen totalDrops
             unaccounted collectors { family storedBatches storedEvents unaccounted } } }`,
          { node: w.node },
        )
      ).collectorHealth
      assert.equal(main.length, 1, JSON.stringify(main))
      assert.ok(main[0].lastSeen >= f.from, `${main[0].lastSeen} after ${f.from}`)
      // The batch ledger saw the node's collector, and nothing it sent went missing uncounted.
      assert.ok(
        main[0].collectors.some((c: Row) => c.family === 'exec' && (c.storedEvents as number) > 0),
        JSON.stringify(main[0].collectors),
      )
      assert.equal(main[0].unaccounted, 0, JSON.stringify(main[0].collectors))
    },
  },
]

/** With a token of namespace A only: A's rows in every root field, none of B's. */
/** The alert the joined shell fires, once the store has its session (the rules run on a clock). */
async function shellAlert(c: Ctx, ask: Ask): Promise<{ alert: Row; sessionId: string }> {
  const sessions = nodesOf(
    (
      await c.poll(
        'the session of pod A',
        `query($filter: EventFilter!) { execSessions(filter: $filter, first: 5) { edges { node { id } } } }`,
        { filter: { from: c.f.from, namespace: c.w.a.namespace } },
        (d) => d.execSessions.edges.length > 0,
      )
    ).execSessions,
  )
  assert.equal(sessions.length, 1)
  const sessionId = sessions[0].id as string
  const found = await until(
    `the ${SHELL_RULE} alert of session ${sessionId}`,
    () =>
      ask(
        `query($rule: String) { alerts(rule: $rule) { rule state namespace labels value activeAt firedAt fingerprint } }`,
        { rule: SHELL_RULE },
      ),
    (d) => d.alerts.some((a: Row) => a.labels.session === sessionId && a.state === 'firing'),
    60_000,
    500,
  )
  return { alert: found.alerts.find((a: Row) => a.labels.session === sessionId), sessionId }
}

const ALERT_CHECKS: Check[] = [
  {
    name: 'alerts / alertHistory / alertRules: the joined shell fires the built-in shell-in-container rule',
    fields: ['alerts', 'alertHistory', 'alertRules'],
    async run(c) {
      const { alert, sessionId } = await shellAlert(c, c.q)
      assert.deepEqual(
        { rule: alert.rule, namespace: alert.namespace, labels: alert.labels, value: alert.value },
        {
          rule: SHELL_RULE,
          namespace: c.w.a.namespace,
          labels: {
            alertname: SHELL_RULE,
            severity: 'warning',
            namespace: c.w.a.namespace,
            pod: c.w.a.name,
            container: 'app',
            session: sessionId,
            shell: 'sh',
          },
          value: 1,
        },
      )
      const history = (
        await c.q(
          `query($rule: String) { alertHistory(rule: $rule, first: 50) { fingerprint from to labels } }`,
          { rule: SHELL_RULE },
        )
      ).alertHistory.filter((t: Row) => t.fingerprint === alert.fingerprint)
      assert.ok(
        history.some((t: Row) => t.to === 'firing'),
        `a transition to firing: ${JSON.stringify(history)}`,
      )
      const rules = (await c.q('{ alertRules { rule health error instances } }')).alertRules
      const shell = rules.find((r: Row) => r.rule === SHELL_RULE)
      assert.ok(shell, JSON.stringify(rules))
      assert.equal(shell.error, null)
    },
  },
]

const asA =
  (c: Ctx): Ask =>
  (query, variables = {}) =>
    c.q(query, variables, c.w.tokenA)
const namespaces = (l: { namespace: string | null }[]) => [...new Set(l.map((x) => x.namespace))]

/** Namespace A's token naming B's namespace: refused with a clear error, nothing of B answered. */
async function refusedForB(c: Ctx, query: string, variables: object): Promise<void> {
  const r = await post(c.url, c.w.tokenA, query, variables)
  assert.equal(r.data?.[Object.keys(r.data ?? {})[0] ?? ''] ?? null, null, JSON.stringify(r.data))
  assert.deepEqual(
    r.errors?.map((e) => e.extensions?.code),
    ['FORBIDDEN_NAMESPACE'],
    JSON.stringify(r.errors),
  )
}

const SCOPED: Check[] = [
  {
    name: 'tokens: no token and an unknown token get 401',
    fields: [],
    async run({ url }) {
      for (const token of [undefined, randomBytes(24).toString('hex')]) {
        const r = await post(url, token, '{ collectorHealth { node } }')
        assert.equal(r.status, 401, JSON.stringify(r))
        assert.equal(r.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED')
      }
    },
  },
  {
    name: 'tokens: namespace A sees its execs and none of B',
    fields: ['execEvents'],
    async run(c) {
      const execs = nodesOf(
        (
          await asA(c)(
            `query($from: DateTime) { execEvents(filter: { from: $from }, first: 500) { edges { node { namespace args } } } }`,
            { from: c.f.from },
          )
        ).execEvents,
      )
      assert.deepEqual(namespaces(execs), [c.w.a.namespace])
      assert.ok(execs.some((e: Row) => JSON.stringify(e.args) === JSON.stringify(c.f.exit3.args)))
    },
  },
  {
    name: 'tokens: namespace A sees its session and none of B',
    fields: ['execSessions', 'execSession'],
    async run(c) {
      const sessions = nodesOf(
        (
          await asA(c)(
            `query($from: DateTime) { execSessions(filter: { from: $from }) { edges { node { id namespace } } } }`,
            { from: c.f.from },
          )
        ).execSessions,
      )
      assert.deepEqual(namespaces(sessions), [c.w.a.namespace])
      const session = await asA(c)(
        `query($id: ID!) { execSession(id: $id) { namespace commandCount } }`,
        { id: sessions[0].id },
      )
      assert.deepEqual(session.execSession, { namespace: c.w.a.namespace, commandCount: 4 })
    },
  },
  {
    name: 'tokens: namespace A sees its connections and none of B',
    fields: ['connections'],
    async run(c) {
      const conns = nodesOf(
        (
          await asA(c)(
            `query($from: DateTime) { connections(filter: { from: $from }, first: 500) { edges { node { namespace event } } } }`,
            { from: c.f.from },
          )
        ).connections,
      )
      assert.deepEqual(namespaces(conns), [c.w.a.namespace])
      assert.deepEqual(
        conns.map((x: { event: string }) => x.event),
        ['connect', 'close'],
      )
    },
  },
  {
    name: 'tokens: namespace A sees its side of the service map; B stays a bare address',
    fields: ['serviceMap'],
    async run(c) {
      const map = (
        await asA(c)(
          `query($from: DateTime) { serviceMap(filter: { from: $from }) { nodes { id namespace } edges { source target port } } }`,
          { from: c.f.from },
        )
      ).serviceMap
      assert.deepEqual(
        namespaces(map.nodes.filter((n: { namespace: string | null }) => n.namespace !== null)),
        [c.w.a.namespace],
      )
      assert.deepEqual(map.edges, [
        {
          source: `${c.w.a.namespace}/Deployment/web`,
          target: `external/${c.w.b.ip}`,
          port: c.f.tcp.serverPort,
        },
      ])
    },
  },
  {
    name: 'tokens: namespace A sees its traffic and none of B',
    fields: ['trafficSeries'],
    async run(c) {
      const series = async (filter: object) =>
        (
          await asA(c)(
            `query($f: EventFilter!) { trafficSeries(filter: $f, step: "1s") { egressBytes } }`,
            { f: { from: c.f.from, ...filter } },
          )
        ).trafficSeries
      assert.ok(sum(await series({ namespace: c.w.a.namespace }), 'egressBytes') >= CLIENT_SENDS)
      await refusedForB(
        c,
        `query($f: EventFilter!) { trafficSeries(filter: $f, step: "1s") { egressBytes } }`,
        { f: { from: c.f.from, namespace: c.w.b.namespace } },
      )
      assert.deepEqual(await series({}), await series({ namespace: c.w.a.namespace }))
    },
  },
  {
    name: 'tokens: namespace A sees its syscall counts and none of B',
    fields: ['syscallCounts'],
    async run(c) {
      const counts = async (filter: object) =>
        (
          await asA(c)(
            `query($f: EventFilter!) { syscallCounts(filter: $f, first: 500) { syscall count } }`,
            { f: { from: c.f.from, ...filter } },
          )
        ).syscallCounts
      assert.ok((await counts({ namespace: c.w.a.namespace })).length > 0)
      await refusedForB(
        c,
        `query($f: EventFilter!) { syscallCounts(filter: $f, first: 500) { syscall count } }`,
        { f: { from: c.f.from, namespace: c.w.b.namespace } },
      )
      assert.deepEqual(await counts({}), await counts({ namespace: c.w.a.namespace }))
    },
  },
  {
    name: 'tokens: namespace A sees its syscalls over time and none of B',
    fields: ['syscallSeries'],
    async run(c) {
      const q = `query($f: EventFilter!) { syscallSeries(filter: $f, step: "1m") { time syscall count } }`
      const series = async (filter: object) =>
        (await asA(c)(q, { f: { from: c.f.from, ...filter } })).syscallSeries
      assert.ok((await series({ namespace: c.w.a.namespace })).length > 0)
      await refusedForB(c, q, { f: { from: c.f.from, namespace: c.w.b.namespace } })
      assert.deepEqual(await series({}), await series({ namespace: c.w.a.namespace }))
    },
  },
  {
    name: 'tokens: namespace A gets its seccomp profile and nothing of B',
    fields: ['seccompProfile'],
    async run(c) {
      const profile = async (n: string, pod: string) =>
        (
          await asA(c)(
            `query($n: String!, $p: String, $from: DateTime) { seccompProfile(namespace: $n, pod: $p, from: $from) { observed pods } }`,
            { n, p: pod, from: c.f.from },
          )
        ).seccompProfile
      assert.deepEqual(await profile(c.w.a.namespace, c.w.a.name), {
        observed: true,
        pods: [c.w.a.name],
      })
      await refusedForB(
        c,
        `query($n: String!, $p: String) { seccompProfile(namespace: $n, pod: $p) { observed pods } }`,
        { n: c.w.b.namespace, p: c.w.b.name },
      )
    },
  },
  {
    name: 'tokens: namespace A gets its file accesses and Landlock ruleset; nothing of B',
    fields: ['fileAccess', 'landlockRuleset'],
    async run(c) {
      const q = `query($f: EventFilter!) { fileAccess(filter: $f, first: 500) { edges { node { path access pods } } } }`
      const files = async (filter: object) =>
        (
          (await asA(c)(q, { f: { from: c.f.from, ...filter } })).fileAccess as {
            edges: { node: Row }[]
          }
        ).edges.map((e) => e.node)
      const mine = await files({ namespace: c.w.a.namespace })
      assert.ok(mine.length > 0, 'namespace A touched files (its execs at least)')
      assert.ok(mine.every((x) => !(x.pods as string[]).includes(c.w.b.name)))
      await refusedForB(c, q, { f: { from: c.f.from, namespace: c.w.b.namespace } })
      assert.deepEqual(await files({}), mine)
      const ruleset = `query($n: String!, $p: String, $from: DateTime) { landlockRuleset(namespace: $n, pod: $p, from: $from) { pods } }`
      assert.deepEqual(
        (await asA(c)(ruleset, { n: c.w.a.namespace, p: c.w.a.name, from: c.f.from }))
          .landlockRuleset.pods,
        [c.w.a.name],
      )
      await refusedForB(c, ruleset, { n: c.w.b.namespace, p: c.w.b.name, from: c.f.from })
    },
  },
  {
    name: 'tokens: namespace A gets its network policy, B a bare address; nothing of B',
    fields: ['networkPolicy'],
    async run(c) {
      const policy = async (n: string, pod: string) =>
        (
          await asA(c)(
            `query($n: String!, $p: String, $from: DateTime) { networkPolicy(namespace: $n, pod: $p, from: $from) {
              ingress { peer { kind namespace address } ports } egress { peer { kind namespace address } ports } } }`,
            { n, p: pod, from: c.f.from },
          )
        ).networkPolicy
      assert.deepEqual(await policy(c.w.a.namespace, c.w.a.name), {
        ingress: [],
        egress: [
          {
            peer: { kind: 'External', namespace: null, address: c.w.b.ip },
            ports: [c.f.tcp.serverPort],
          },
        ],
      })
      await refusedForB(
        c,
        `query($n: String!, $p: String) { networkPolicy(namespace: $n, pod: $p) { ingress { ports } } }`,
        { n: c.w.b.namespace, p: c.w.b.name },
      )
    },
  },
  {
    name: 'tokens: namespace A sees its shell alert and nothing of B; rule health is for every-namespace callers',
    fields: ['alerts', 'alertHistory', 'alertRules'],
    async run(c) {
      const { alert } = await shellAlert(c, asA(c))
      assert.equal(alert.namespace, c.w.a.namespace)
      const all = await asA(c)('{ alerts { namespace } alertHistory(first: 200) { namespace } }')
      assert.deepEqual(namespaces(all.alerts), [c.w.a.namespace])
      assert.deepEqual(namespaces(all.alertHistory), [c.w.a.namespace])
      assert.deepEqual((await asA(c)('{ alertRules { rule } }')).alertRules, [])
    },
  },
  {
    name: 'tokens: namespace A sees no collector health (nodes are for every-namespace callers)',
    fields: ['collectorHealth'],
    async run(c) {
      assert.deepEqual((await asA(c)('{ collectorHealth { node } }')).collectorHealth, [])
    },
  },
]

function pick<T extends Record<string, unknown>>(o: T, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o?.[k]]))
}

function sum(points: Record<string, number>[], key: string): number {
  return points.reduce((n, p) => n + (p[key] ?? 0), 0)
}

/** The root fields of the API's Query type. */
export function queryRootFields(): string[] {
  return Object.keys(buildSchema().getQueryType()!.getFields()).sort()
}

/** The whole suite for one mode: services started once, the scenario run once, every check. */
export function acceptanceSuite(mode: Mode): void {
  const skip = mode.skip || (kubeApiServerUnavailable() ?? false)
  describe(`acceptance (${mode.name})`, { skip, timeout: 360_000 }, () => {
    let w: World
    let deployment: Deployment | undefined
    let facts: Facts
    let url: string

    before(
      async (t) => {
        // The phases' wall times, in the report: the suite's budget is a few minutes.
        let at = performance.now()
        const phase = (name: string) => {
          const now = performance.now()
          t.diagnostic(`${mode.name}: ${name} in ${Math.round(now - at)} ms`)
          at = now
        }
        w = await World.create(mode.name)
        deployment = await mode.start(w)
        phase('services started')
        facts = await runScenario(w)
        phase('scenario ran')
        url = await deployment.settle()
        phase('settled')
      },
      { timeout: 300_000 },
    )

    after(
      async () => {
        await deployment?.stop()
        await w?.cleanUp()
      },
      { timeout: 120_000 },
    )

    const ctx = (): Ctx => {
      const q: Ask = async (query, variables = {}, token = w.adminToken) => {
        const r = await post(url, token, query, variables)
        assert.equal(r.status, 200, JSON.stringify(r).slice(0, 2000))
        assert.equal(r.errors, undefined, JSON.stringify(r.errors))
        return r.data
      }
      return {
        w,
        f: facts,
        q,
        poll: (what, query, variables, ok) =>
          until(what, () => q(query, variables), ok, deployment!.pollMs, 500),
        d: deployment!,
        url,
      }
    }

    for (const check of [...CHECKS, ...ALERT_CHECKS, ...SCOPED])
      it(check.name, { timeout: 60_000 }, () => check.run(ctx()))

    it('every Query root field is asserted on, with the admin token and with a scoped token', () => {
      const fields = queryRootFields()
      const asserted = new Set([...CHECKS, ...ALERT_CHECKS].flatMap((c) => c.fields))
      assert.deepEqual(
        fields.filter((x) => !asserted.has(x)),
        [],
        'root fields no check asserts on',
      )
      const scoped = new Set(SCOPED.flatMap((c) => c.fields))
      assert.deepEqual(
        fields.filter((x) => !scoped.has(x)),
        [],
        'root fields the token checks skip',
      )
    })
  })
}
