// A small, realistic cluster's worth of rows: two namespaces (shop, bank) with several pods,
// execs with exits, exec sessions, TCP connections between and out of them, traffic,
// syscall counts, and collector statistics. Times are within the last hour: the tables' TTL
// would drop older parts.
import type { Store } from '@ebbflow/store'

/** Whole minute, two hours ago, in ns since the epoch. */
export const BASE_NS = (BigInt(Math.floor(Date.now() / 60_000)) * 60n - 7200n) * 1_000_000_000n

/** JSONEachRow DateTime64(9) text of BASE_NS + offset. */
export function at(offsetNs: bigint | number): string {
  const ns = BASE_NS + BigInt(offsetNs)
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`
}

/** RFC 3339 of BASE_NS + offset, as the API prints it. */
export function iso(offsetNs: bigint | number): string {
  const ns = BASE_NS + BigInt(offsetNs)
  const d = new Date(Number(ns / 1_000_000n))
  return `${d.toISOString().slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`
}

export const S = 1_000_000_000

interface PodMeta {
  node: string
  boot_id: string
  namespace: string
  pod: string
  container: string
  workload_kind: string
  workload_name: string
  function?: string
  labels: Record<string, string>
}

export const PODS = {
  web1: {
    node: 'node-a',
    boot_id: 'boot-a',
    namespace: 'shop',
    pod: 'web-1',
    container: 'web',
    workload_kind: 'Deployment',
    workload_name: 'web',
    labels: { app: 'web', tier: 'front', 'pod-template-hash': '5d8f' },
  },
  web2: {
    node: 'node-b',
    boot_id: 'boot-b',
    namespace: 'shop',
    pod: 'web-2',
    container: 'web',
    workload_kind: 'Deployment',
    workload_name: 'web',
    labels: { app: 'web', tier: 'front', 'pod-template-hash': '5d8f' },
  },
  db0: {
    node: 'node-a',
    boot_id: 'boot-a',
    namespace: 'shop',
    pod: 'db-0',
    container: 'postgres',
    workload_kind: 'StatefulSet',
    workload_name: 'db',
    labels: { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-0' },
  },
  ledger: {
    node: 'node-b',
    boot_id: 'boot-b',
    namespace: 'bank',
    pod: 'ledger-1',
    container: 'ledger',
    workload_kind: 'Deployment',
    workload_name: 'ledger',
    function: 'settle',
    labels: { app: 'ledger' },
  },
  host: {
    node: 'node-a',
    boot_id: 'boot-a',
    namespace: '',
    pod: '',
    container: '',
    workload_kind: '',
    workload_name: '',
    labels: {},
  },
} satisfies Record<string, PodMeta>

export const IPS = {
  web1: '10.0.0.11',
  web2: '10.0.0.12',
  db0: '10.0.0.20',
  ledger: '10.1.0.5',
  internet: '93.184.216.34',
  client: '203.0.113.9',
}

export interface ExecSpec {
  pod: PodMeta
  t: number
  pid: number
  comm: string
  args: string[]
  exit?: { t: number; code: number; signal?: number }
  session?: string
  uid?: number
}

/** Execs in time order within each pod; exits follow their exec. */
export const EXECS: ExecSpec[] = [
  { pod: PODS.web1, t: 1 * S, pid: 100, comm: 'nginx', args: ['nginx', '-g', 'daemon off;'] },
  {
    pod: PODS.web1,
    t: 2 * S,
    pid: 101,
    comm: 'curl',
    args: ['curl', '-s', 'http://db:5432'],
    exit: { t: 2 * S + 500_000, code: 7 },
  },
  // Same nanosecond as the next: the page order falls back on node, boot and pid.
  {
    pod: PODS.web1,
    t: 3 * S,
    pid: 102,
    comm: 'sh',
    args: ['sh', '-c', 'true'],
    exit: { t: 3 * S + 100, code: 0 },
  },
  {
    pod: PODS.web2,
    t: 3 * S,
    pid: 102,
    comm: 'sh',
    args: ['sh', '-c', 'false'],
    exit: { t: 3 * S + 200, code: 1 },
  },
  {
    pod: PODS.web1,
    t: 10 * S,
    pid: 200,
    comm: 'bash',
    args: ['bash'],
    session: 'sess-shop-1',
    uid: 0,
    exit: { t: 60 * S, code: 0 },
  },
  {
    pod: PODS.web1,
    t: 12 * S,
    pid: 201,
    comm: 'ls',
    args: ['ls', '-la', '/etc'],
    session: 'sess-shop-1',
    uid: 0,
    exit: { t: 12 * S + 1000, code: 0 },
  },
  {
    pod: PODS.web1,
    t: 15 * S,
    pid: 202,
    comm: 'cat',
    args: ['cat', '/etc/shadow'],
    session: 'sess-shop-1',
    uid: 0,
    exit: { t: 15 * S + 2000, code: 1 },
  },
  {
    pod: PODS.web2,
    t: 20 * S,
    pid: 300,
    comm: 'sh',
    args: ['sh'],
    session: 'sess-shop-2',
    uid: 1000,
  },
  {
    pod: PODS.db0,
    t: 25 * S,
    pid: 400,
    comm: 'postgres',
    args: ['postgres', '-D', '/var/lib/postgresql/data'],
  },
  {
    pod: PODS.ledger,
    t: 4 * S,
    pid: 500,
    comm: 'ledger',
    args: ['ledger', '--secret=hunter2'],
    exit: { t: 5 * S, code: 0 },
  },
  {
    pod: PODS.ledger,
    t: 30 * S,
    pid: 501,
    comm: 'bash',
    args: ['bash'],
    session: 'sess-bank-1',
    uid: 0,
    exit: { t: 90 * S, code: 130 },
  },
  {
    pod: PODS.ledger,
    t: 31 * S,
    pid: 502,
    comm: 'psql',
    args: ['psql', 'ledger'],
    session: 'sess-bank-1',
    uid: 0,
    exit: { t: 40 * S, code: 0 },
  },
  { pod: PODS.host, t: 6 * S, pid: 600, comm: 'sshd', args: ['sshd', '-D'] },
]

function podColumns(p: PodMeta) {
  return {
    node: p.node,
    boot_id: p.boot_id,
    namespace: p.namespace,
    pod: p.pod,
    container: p.container,
    workload_kind: p.workload_kind,
    workload_name: p.workload_name,
    function: p.function ?? '',
    labels: p.labels,
  }
}

function processRows() {
  const rows: Record<string, unknown>[] = []
  for (const e of EXECS) {
    const common = {
      ...podColumns(e.pod),
      session: e.session ?? '',
      pid: e.pid,
      tgid: e.pid,
      ppid: e.session && e.comm !== 'bash' ? e.pid - 1 : 1,
      uid: e.uid ?? 101,
      comm: e.comm,
    }
    rows.push({
      time: at(e.t),
      kind: 'exec',
      ...common,
      filename: `/usr/bin/${e.comm}`,
      args: e.args,
    })
    if (e.exit)
      rows.push({
        time: at(e.exit.t),
        kind: 'exit',
        ...common,
        exit_code: e.exit.code,
        signal: e.exit.signal ?? 0,
        duration_ns: e.exit.t - e.t,
      })
  }
  // The pid of web-1's curl, reused later by another process whose exit was not seen: the
  // first exit after an exec is the one that counts.
  rows.push({
    time: at(100 * S),
    kind: 'exit',
    ...podColumns(PODS.web1),
    pid: 101,
    tgid: 101,
    comm: 'other',
    exit_code: 99,
    duration_ns: 1,
  })
  return rows
}

interface TcpSpec {
  pod: PodMeta
  t: number
  event: 'connect' | 'accept' | 'close' | 'connect_failed'
  role: 'active' | 'passive'
  sock: string
  src: string
  sport: number
  dst: string
  dport: number
  sent?: number
  received?: number
}

function conn(
  pod: PodMeta,
  t: number,
  role: 'active' | 'passive',
  sock: string,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  sent: number,
  received: number,
): TcpSpec[] {
  const open = role === 'active' ? 'connect' : 'accept'
  return [
    { pod, t, event: open, role, sock, src, sport, dst, dport },
    { pod, t: t + S, event: 'close', role, sock, src, sport, dst, dport, sent, received },
  ]
}

export const TCP: TcpSpec[] = [
  // web-1 → db-0:5432, both sides seen.
  ...conn(PODS.web1, 40 * S, 'active', '1001', IPS.web1, 40001, IPS.db0, 5432, 1000, 5000),
  ...conn(PODS.db0, 40 * S + 10, 'passive', '2001', IPS.db0, 5432, IPS.web1, 40001, 5000, 1000),
  // web-2 → db-0:5432, client side only.
  ...conn(PODS.web2, 41 * S, 'active', '1002', IPS.web2, 40002, IPS.db0, 5432, 200, 300),
  // web-1 → the internet, 443.
  ...conn(PODS.web1, 42 * S, 'active', '1003', IPS.web1, 40003, IPS.internet, 443, 100, 2000),
  // An outside client → web-1:8080.
  ...conn(PODS.web1, 43 * S, 'passive', '1004', IPS.web1, 8080, IPS.client, 50000, 4096, 512),
  // bank's ledger → shop's db (across namespaces), both sides.
  ...conn(PODS.ledger, 44 * S, 'active', '3001', IPS.ledger, 40100, IPS.db0, 5432, 70, 80),
  ...conn(PODS.db0, 44 * S + 10, 'passive', '2002', IPS.db0, 5432, IPS.ledger, 40100, 80, 70),
  // A refused connect from web-1 to db-0's 6379.
  {
    pod: PODS.web1,
    t: 45 * S,
    event: 'connect_failed',
    role: 'active',
    sock: '1005',
    src: IPS.web1,
    sport: 40005,
    dst: IPS.db0,
    dport: 6379,
  },
]

function tcpRows() {
  return TCP.map((c) => ({
    time: at(c.t),
    event: c.event,
    role: c.role,
    ...podColumns(c.pod),
    sock_id: c.sock,
    pid: c.role === 'active' ? 100 : 0,
    comm: c.role === 'active' ? 'client' : '',
    ip_family: 4,
    saddr: `::ffff:${c.src}`,
    daddr: `::ffff:${c.dst}`,
    sport: c.sport,
    dport: c.dport,
    duration_ns: c.event === 'close' ? S : 0,
    bytes_sent: c.sent ?? 0,
    bytes_received: c.received ?? 0,
  }))
}

/** Traffic of web-1 at 0s, 30s, 60s, 90s; of ledger at 0s. */
function trafficRows() {
  const rows: Record<string, unknown>[] = []
  for (const [i, t] of [0, 30, 60, 90].entries()) {
    for (const direction of ['ingress', 'egress'] as const)
      rows.push({
        time: at(t * S),
        interval_ns: 30 * S,
        ...podColumns(PODS.web1),
        direction,
        protocol: 6,
        ip_family: 4,
        remote_addr: `::ffff:${IPS.db0}`,
        remote_port: 5432,
        local_port: 40001,
        packets: direction === 'ingress' ? 10 + i : 20 + i,
        bytes: direction === 'ingress' ? 1000 * (i + 1) : 100 * (i + 1),
      })
  }
  rows.push({
    time: at(0),
    interval_ns: 30 * S,
    ...podColumns(PODS.ledger),
    direction: 'egress',
    protocol: 6,
    ip_family: 4,
    remote_addr: `::ffff:${IPS.db0}`,
    remote_port: 5432,
    local_port: 40100,
    packets: 5,
    bytes: 777,
  })
  return rows
}

const SYSCALLS: [PodMeta, string, string, number, number][] = [
  [PODS.web1, 'web', 'read', 0, 500],
  [PODS.web1, 'web', 'write', 1, 300],
  [PODS.web1, 'web', 'epoll_wait', 232, 50],
  [PODS.web2, 'web', 'read', 0, 200],
  [PODS.web2, 'web', 'accept4', 288, 20],
  // The runtime starting the containers: no container name yet.
  [PODS.web1, '', 'execve', 59, 1],
  [PODS.web2, '', 'execve', 59, 1],
  [PODS.web1, '', 'capset', 126, 2],
  [PODS.db0, 'postgres', 'fsync', 74, 40],
  [PODS.db0, 'postgres', 'read', 0, 60],
  [PODS.ledger, 'ledger', 'read', 0, 10],
  [PODS.ledger, 'ledger', 'ptrace', 101, 1],
]

function syscallRows() {
  return SYSCALLS.map(([pod, container, syscall, nr, count], i) => ({
    time: at((50 + i) * S),
    interval_ns: S,
    ...podColumns(pod),
    container,
    syscall_nr: nr,
    syscall,
    count,
  }))
}

function syscallEventRows() {
  return [
    {
      time: at(49 * S),
      ...podColumns(PODS.web1),
      container: '',
      pid: 90,
      tgid: 90,
      comm: 'runc:[2:INIT]',
      syscall_nr: 165,
      syscall: 'mount',
      args: ['0', '0', '0', '0', '0', '0'],
    },
  ]
}

function statsRows() {
  return [
    // The ingester's lag rows: the latest one per family counts, not their sum.
    { time: at(5 * S), node: 'node-a', metric: 'ingest_lag_ms', family: 'exec', value: 900 },
    { time: at(25 * S), node: 'node-a', metric: 'ingest_lag_ms', family: 'exec', value: 120 },
    {
      time: at(10 * S),
      node: 'node-a',
      metric: 'drops',
      family: 'exec',
      reason: 'buffer_full',
      value: 3,
    },
    {
      time: at(20 * S),
      node: 'node-a',
      metric: 'drops',
      family: 'exec',
      reason: 'buffer_full',
      value: 2,
    },
    {
      time: at(30 * S),
      node: 'node-a',
      metric: 'drops',
      family: 'net',
      reason: 'map_full',
      value: 4,
    },
    {
      time: at(40 * S),
      node: 'node-b',
      metric: 'drops',
      family: 'syscall',
      reason: 'queue_full',
      value: 0,
    },
  ]
}

/** File accesses (file family): web-1 reads its config, writes a log, and edits /etc. */
const FILES: [PodMeta, string, string, string, number][] = [
  [PODS.web1, 'nginx', '/etc/nginx/nginx.conf', 'read', 12],
  [PODS.web1, 'nginx', '/var/log/nginx/access.log', 'write', 40],
  [PODS.web1, 'sh', '/etc/nginx/conf.d/extra.conf', 'create', 1],
  [PODS.web1, 'sh', '/etc/nginx/conf.d/extra.conf', 'write', 1],
]

function fileRows() {
  return FILES.map(([pod, comm, path, access, count], i) => ({
    time: at((52 + i) * S),
    ...podColumns(pod),
    pid: 300 + i,
    tgid: 300 + i,
    comm,
    path,
    access,
    op: 'open',
    count,
  }))
}

export async function fill(store: Store): Promise<void> {
  await store.insert('ebbflow.process_events', processRows())
  await store.insert('ebbflow.tcp_connections', tcpRows())
  await store.insert('ebbflow.traffic', trafficRows())
  await store.insert('ebbflow.syscall_counts', syscallRows())
  await store.insert('ebbflow.syscall_events', syscallEventRows())
  await store.insert('ebbflow.collector_stats', statsRows())
  await store.insert('ebbflow.file_accesses', fileRows())
}
