// Every root field against a filled chDB, through the API's fetch handler, with exact values.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { EXECS, iso, S } from '../fixture.ts'
import { gql, type Harness, openHarness, TOKENS } from '../harness.ts'

let h: Harness
before(async () => {
  h = await openHarness()
})
after(async () => {
  await h.close()
})

const EXEC_FIELDS = `time node namespace pod container function pid ppid uid comm filename args
  exitCode durationNs sessionId`

/** The fixture's execs of some namespaces, in the API's order: time, node, boot, pid. */
function expectedExecs(namespaces: string[]) {
  return EXECS.filter((e) => namespaces.includes(e.pod.namespace))
    .sort((a, b) => a.t - b.t || a.pod.node.localeCompare(b.pod.node) || a.pid - b.pid)
    .map((e) => ({
      time: iso(e.t),
      node: e.pod.node,
      namespace: e.pod.namespace,
      pod: e.pod.pod,
      container: e.pod.container,
      function: 'function' in e.pod ? (e.pod.function as string) : null,
      pid: e.pid,
      comm: e.comm,
      args: e.args,
      exitCode: e.exit?.code ?? null,
      durationNs: e.exit ? e.exit.t - e.t : null,
      sessionId: e.session ?? null,
    }))
}

function pick(nodes: Record<string, unknown>[]) {
  return nodes.map((n) => ({
    time: n.time,
    node: n.node,
    namespace: n.namespace,
    pod: n.pod,
    container: n.container,
    function: n.function,
    pid: n.pid,
    comm: n.comm,
    args: n.args,
    exitCode: n.exitCode,
    durationNs: n.durationNs,
    sessionId: n.sessionId,
  }))
}

const EXEC_QUERY = `query ($filter: EventFilter!, $first: Int, $after: String, $last: Int, $before: String) {
  execEvents(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { ${EXEC_FIELDS} } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`

describe('execEvents', () => {
  it('lists the namespace execs in order with the exit code and duration of their exits', async () => {
    const r = await gql(h.api, EXEC_QUERY, { filter: {}, first: 100 })
    assert.equal(r.errors, undefined)
    const nodes = r.data.execEvents.edges.map((e: { node: unknown }) => e.node)
    assert.deepEqual(pick(nodes), expectedExecs(['shop']))
    assert.equal(
      nodes[1].exitCode,
      7,
      'the first exit after the exec, not a later reuse of the pid',
    )
    assert.equal(nodes[0].filename, '/usr/bin/nginx')
    assert.equal(nodes[0].uid, 101)
    assert.deepEqual(r.data.execEvents.pageInfo.hasNextPage, false)
  })

  it('gives a token of two namespaces both, and an admin token the host too', async () => {
    const both = await gql(h.api, EXEC_QUERY, { filter: {}, first: 100 }, TOKENS.both)
    assert.deepEqual(
      pick(both.data.execEvents.edges.map((e: { node: unknown }) => e.node)),
      expectedExecs(['shop', 'bank']),
    )
    const admin = await gql(h.api, EXEC_QUERY, { filter: {}, first: 100 }, TOKENS.admin)
    assert.equal(admin.data.execEvents.edges.length, EXECS.length)
    const host = admin.data.execEvents.edges.find(
      (e: { node: { comm: string } }) => e.node.comm === 'sshd',
    )
    assert.equal(host.node.namespace, null)
    assert.equal(host.node.pod, null)
  })

  const cases: [string, Record<string, unknown>, number[]][] = [
    ['pod', { pod: 'web-2' }, [102, 300]],
    ['node', { node: 'node-b' }, [102, 300]],
    ['container', { container: 'postgres' }, [400]],
    ['label value', { labels: [{ key: 'app', value: 'db' }] }, [400]],
    ['label present', { labels: [{ key: 'tier' }] }, [100, 101, 102, 102, 200, 201, 202, 300]],
    [
      'two labels',
      {
        labels: [
          { key: 'app', value: 'web' },
          { key: 'tier', value: 'x' },
        ],
      },
      [],
    ],
    ['from (inclusive)', { from: iso(15 * S) }, [202, 300, 400]],
    ['to (exclusive)', { to: iso(3 * S) }, [100, 101]],
    ['window', { from: iso(3 * S), to: iso(3 * S + 1) }, [102, 102]],
    ['namespace of the token', { namespace: 'shop', pod: 'db-0' }, [400]],
    ['function', { function: 'settle' }, []],
    ['nothing matches', { pod: 'nope' }, []],
  ]
  for (const [name, filter, pids] of cases)
    it(`filters by ${name}`, async () => {
      const r = await gql(h.api, EXEC_QUERY, { filter, first: 100 })
      assert.equal(r.errors, undefined)
      assert.deepEqual(
        r.data.execEvents.edges.map((e: { node: { pid: number } }) => e.node.pid),
        pids,
      )
      if (pids.length === 0)
        assert.deepEqual(r.data.execEvents.pageInfo, {
          hasNextPage: false,
          hasPreviousPage: false,
          startCursor: null,
          endCursor: null,
        })
    })

  it('refuses a namespace outside the token with FORBIDDEN_NAMESPACE, not an empty page', async () => {
    for (const [query, variables] of [
      [EXEC_QUERY, { filter: { namespace: 'bank' }, first: 100 }],
      ['query($ns: String!) { seccompProfile(namespace: $ns) { pods } }', { ns: 'bank' }],
      [
        'query($ns: String!) { networkPolicy(namespace: $ns) { ingress { peerSpec } } }',
        { ns: 'bank' },
      ],
    ] as const) {
      const r = await gql(h.api, query, variables)
      assert.deepEqual(
        r.errors?.map((e) => [e.message, e.extensions?.code]),
        [[`the namespace asked for is outside this token's scope (shop)`, 'FORBIDDEN_NAMESPACE']],
      )
      assert.ok(!JSON.stringify(r.data ?? null).includes('ledger'))
    }
    // The admin token reads it.
    const admin = await gql(
      h.api,
      EXEC_QUERY,
      { filter: { namespace: 'bank' }, first: 100 },
      TOKENS.admin,
    )
    assert.equal(admin.errors, undefined)
    assert.ok(admin.data.execEvents.edges.length > 0)
  })

  it('filters by function for the namespace that has it', async () => {
    const r = await gql(h.api, EXEC_QUERY, { filter: { function: 'settle' } }, TOKENS.bank)
    assert.deepEqual(
      r.data.execEvents.edges.map((e: { node: { pid: number } }) => e.node.pid),
      [500, 501, 502],
    )
  })

  it('pages forward to the end and back to the start with stable cursors', async () => {
    const all = expectedExecs(['shop']).map((e) => `${e.node}/${e.pid}`)
    const seen: string[] = []
    const cursors: string[] = []
    let after: string | null = null
    for (let page = 0; page < 10; page++) {
      const r = await gql(h.api, EXEC_QUERY, { filter: {}, first: 2, after })
      assert.equal(r.errors, undefined)
      const c = r.data.execEvents
      for (const e of c.edges) {
        seen.push(`${e.node.node}/${e.node.pid}`)
        cursors.push(e.cursor)
      }
      assert.equal(c.pageInfo.hasPreviousPage, after !== null)
      if (!c.pageInfo.hasNextPage) break
      after = c.pageInfo.endCursor
    }
    assert.deepEqual(seen, all)
    const back: string[] = []
    let before: string | null = cursors.at(-1)!
    back.unshift(all.at(-1)!)
    for (let page = 0; page < 10; page++) {
      const r = await gql(h.api, EXEC_QUERY, { filter: {}, last: 3, before })
      const c = r.data.execEvents
      back.unshift(
        ...c.edges.map(
          (e: { node: { node: string; pid: number } }) => `${e.node.node}/${e.node.pid}`,
        ),
      )
      assert.equal(c.pageInfo.hasNextPage, true)
      if (!c.pageInfo.hasPreviousPage) break
      before = c.pageInfo.startCursor
    }
    assert.deepEqual(back, all)
  })

  it('pages past the end to an empty page', async () => {
    const first = await gql(h.api, EXEC_QUERY, { filter: {}, first: 100 })
    const end = first.data.execEvents.pageInfo.endCursor
    const r = await gql(h.api, EXEC_QUERY, { filter: {}, first: 5, after: end })
    assert.deepEqual(r.data.execEvents.edges, [])
    assert.equal(r.data.execEvents.pageInfo.hasNextPage, false)
  })

  it('accepts first: 0', async () => {
    const r = await gql(h.api, EXEC_QUERY, { filter: {}, first: 0 })
    assert.deepEqual(r.data.execEvents.edges, [])
    assert.equal(r.data.execEvents.pageInfo.hasNextPage, true)
  })
})

describe('batching', () => {
  function counting() {
    const statements: string[] = []
    const store = {
      ...h.store,
      query: (sql: string, params?: Record<string, unknown>) => {
        if (!sql.startsWith('SELECT 1 AS drain')) statements.push(sql)
        return h.store.query(sql, params)
      },
    }
    return { api: h.make({ store: store as never }), statements }
  }

  it('reads the exits of a whole page in one statement', async () => {
    const { api, statements } = counting()
    const r = await gql(api, EXEC_QUERY, { filter: {}, first: 100 })
    assert.equal(r.data.execEvents.edges.length, 9)
    assert.equal(statements.length, 2)
    assert.match(statements[1]!, /kind = 'exit'/)
  })

  it('reads the commands and exits of every session in one statement each', async () => {
    const { api, statements } = counting()
    const r = await gql(
      api,
      '{ execSessions(filter: {}) { edges { node { endedAt commands { exitCode durationNs } } } } }',
      {},
      TOKENS.both,
    )
    assert.equal(r.data.execSessions.edges.length, 3)
    assert.equal(statements.length, 3)
  })
})

describe('exec sessions', () => {
  const SESSIONS = `query ($filter: EventFilter!, $first: Int, $after: String) {
    execSessions(filter: $filter, first: $first, after: $after) {
      edges { cursor node { id node namespace pod container uid startedAt lastCommandAt endedAt
        exitCode commandCount truncated commands { comm pid args exitCode time } } }
      pageInfo { hasNextPage endCursor }
    }
  }`

  it('lists the sessions of the namespace by their start', async () => {
    const r = await gql(h.api, SESSIONS, { filter: {} })
    assert.equal(r.errors, undefined)
    const nodes = r.data.execSessions.edges.map((e: { node: unknown }) => e.node)
    assert.deepEqual(nodes, [
      {
        id: 'sess-shop-1',
        node: 'node-a',
        namespace: 'shop',
        pod: 'web-1',
        container: 'web',
        uid: 0,
        startedAt: iso(10 * S),
        lastCommandAt: iso(15 * S),
        endedAt: iso(60 * S),
        exitCode: 0,
        commandCount: 3,
        truncated: false,
        commands: [
          { comm: 'bash', pid: 200, args: ['bash'], exitCode: 0, time: iso(10 * S) },
          { comm: 'ls', pid: 201, args: ['ls', '-la', '/etc'], exitCode: 0, time: iso(12 * S) },
          { comm: 'cat', pid: 202, args: ['cat', '/etc/shadow'], exitCode: 1, time: iso(15 * S) },
        ],
      },
      {
        id: 'sess-shop-2',
        node: 'node-b',
        namespace: 'shop',
        pod: 'web-2',
        container: 'web',
        uid: 1000,
        startedAt: iso(20 * S),
        lastCommandAt: iso(20 * S),
        endedAt: null,
        exitCode: null,
        commandCount: 1,
        truncated: false,
        commands: [{ comm: 'sh', pid: 300, args: ['sh'], exitCode: null, time: iso(20 * S) }],
      },
    ])
  })

  it('pages sessions one at a time', async () => {
    const one = await gql(h.api, SESSIONS, { filter: {}, first: 1 })
    assert.equal(one.data.execSessions.edges[0].node.id, 'sess-shop-1')
    assert.equal(one.data.execSessions.pageInfo.hasNextPage, true)
    const two = await gql(h.api, SESSIONS, {
      filter: {},
      first: 1,
      after: one.data.execSessions.pageInfo.endCursor,
    })
    assert.equal(two.data.execSessions.edges[0].node.id, 'sess-shop-2')
    assert.equal(two.data.execSessions.pageInfo.hasNextPage, false)
  })

  it('plays one session back, commands in order, with exit codes', async () => {
    const r = await gql(
      h.api,
      `{ execSession(id: "sess-bank-1") { id pod endedAt exitCode commands { comm exitCode durationNs sessionId } } }`,
      {},
      TOKENS.bank,
    )
    assert.deepEqual(r.data.execSession, {
      id: 'sess-bank-1',
      pod: 'ledger-1',
      endedAt: iso(90 * S),
      exitCode: 130,
      commands: [
        { comm: 'bash', exitCode: 130, durationNs: 60 * S, sessionId: 'sess-bank-1' },
        { comm: 'psql', exitCode: 0, durationNs: 9 * S, sessionId: 'sess-bank-1' },
      ],
    })
  })

  it('caps playback at the server limit and says so', async () => {
    const api = h.make({ limits: { maxSessionCommands: 2 } })
    const r = await gql(api, `{ execSession(id: "sess-shop-1") { truncated commands { comm } } }`)
    assert.deepEqual(r.data.execSession, {
      truncated: true,
      commands: [{ comm: 'bash' }, { comm: 'ls' }],
    })
  })

  it('answers null for an unknown session', async () => {
    const r = await gql(h.api, `{ execSession(id: "nope") { id } }`)
    assert.deepEqual(r.data, { execSession: null })
  })
})

describe('connections', () => {
  const Q = `query ($filter: EventFilter!, $events: [TcpEventKind!], $first: Int, $after: String) {
    connections(filter: $filter, events: $events, first: $first, after: $after) {
      edges { cursor node { time event role pod workloadName sourceAddress sourcePort
        destinationAddress destinationPort bytesSent bytesReceived durationNs sockId } }
      pageInfo { hasNextPage endCursor }
    }
  }`

  it('lists closes with their bytes', async () => {
    const r = await gql(h.api, Q, { filter: { pod: 'web-1' }, events: ['close'] })
    assert.equal(r.errors, undefined)
    assert.deepEqual(
      r.data.connections.edges.map((e: { node: unknown }) => e.node),
      [
        {
          time: iso(41 * S),
          event: 'close',
          role: 'active',
          pod: 'web-1',
          workloadName: 'web',
          sourceAddress: '10.0.0.11',
          sourcePort: 40001,
          destinationAddress: '10.0.0.20',
          destinationPort: 5432,
          bytesSent: 1000,
          bytesReceived: 5000,
          durationNs: S,
          sockId: '1001',
        },
        {
          time: iso(43 * S),
          event: 'close',
          role: 'active',
          pod: 'web-1',
          workloadName: 'web',
          sourceAddress: '10.0.0.11',
          sourcePort: 40003,
          destinationAddress: '93.184.216.34',
          destinationPort: 443,
          bytesSent: 100,
          bytesReceived: 2000,
          durationNs: S,
          sockId: '1003',
        },
        {
          time: iso(44 * S),
          event: 'close',
          role: 'passive',
          pod: 'web-1',
          workloadName: 'web',
          sourceAddress: '10.0.0.11',
          sourcePort: 8080,
          destinationAddress: '203.0.113.9',
          destinationPort: 50000,
          bytesSent: 4096,
          bytesReceived: 512,
          durationNs: S,
          sockId: '1004',
        },
      ],
    )
  })

  it('pages through every event of the namespace', async () => {
    const seen: string[] = []
    let after: string | null = null
    for (let i = 0; i < 20; i++) {
      const r = await gql(h.api, Q, { filter: {}, first: 3, after })
      for (const e of r.data.connections.edges) seen.push(`${e.node.sockId}:${e.node.event}`)
      if (!r.data.connections.pageInfo.hasNextPage) break
      after = r.data.connections.pageInfo.endCursor
    }
    assert.deepEqual(seen, [
      '1001:connect',
      '2001:accept',
      '1001:close',
      // Same nanosecond as the close above: node-a sorts before node-b.
      '1002:connect',
      '2001:close',
      '1003:connect',
      '1002:close',
      '1003:close',
      '1004:accept',
      '1004:close',
      '2002:accept',
      '1005:connect_failed',
      '2002:close',
    ])
  })
})

describe('serviceMap', () => {
  const Q = `query ($filter: EventFilter!) { serviceMap(filter: $filter) {
    nodes { id namespace kind name external address }
    edges { source target port connections failedConnections bytesSent bytesReceived } } }`

  it('names workloads, external peers, and the bytes between them', async () => {
    const r = await gql(h.api, Q, { filter: {} })
    assert.equal(r.errors, undefined)
    assert.deepEqual(r.data.serviceMap, {
      nodes: [
        ext('10.1.0.5'),
        ext('203.0.113.9'),
        ext('93.184.216.34'),
        {
          id: 'shop/Deployment/web',
          namespace: 'shop',
          kind: 'Deployment',
          name: 'web',
          external: false,
          address: null,
        },
        {
          id: 'shop/StatefulSet/db',
          namespace: 'shop',
          kind: 'StatefulSet',
          name: 'db',
          external: false,
          address: null,
        },
      ],
      edges: [
        edge('external/10.1.0.5', 'shop/StatefulSet/db', 5432, 1, 0, 70, 80),
        edge('external/203.0.113.9', 'shop/Deployment/web', 8080, 1, 0, 512, 4096),
        edge('shop/Deployment/web', 'external/93.184.216.34', 443, 1, 0, 100, 2000),
        edge('shop/Deployment/web', 'shop/StatefulSet/db', 5432, 2, 0, 1200, 5300),
        edge('shop/Deployment/web', 'shop/StatefulSet/db', 6379, 0, 1, 0, 0),
      ],
    })
  })

  it('names the peer in another namespace only for a token that reads both', async () => {
    const bank = await gql(h.api, Q, { filter: {} }, TOKENS.bank)
    assert.deepEqual(bank.data.serviceMap.edges, [
      edge('bank/Deployment/ledger', 'external/10.0.0.20', 5432, 1, 0, 70, 80),
    ])
    const both = await gql(h.api, Q, { filter: { namespace: 'bank' } }, TOKENS.both)
    assert.deepEqual(both.data.serviceMap.edges, [
      edge('bank/Deployment/ledger', 'shop/StatefulSet/db', 5432, 1, 0, 70, 80),
    ])
  })

  it('is empty outside the window', async () => {
    const r = await gql(h.api, Q, { filter: { to: iso(0) } })
    assert.deepEqual(r.data.serviceMap, { nodes: [], edges: [] })
  })
})

function ext(address: string) {
  return {
    id: `external/${address}`,
    namespace: null,
    kind: 'External',
    name: address,
    external: true,
    address,
  }
}

function edge(
  source: string,
  target: string,
  port: number,
  connections: number,
  failedConnections: number,
  bytesSent: number,
  bytesReceived: number,
) {
  return { source, target, port, connections, failedConnections, bytesSent, bytesReceived }
}

describe('trafficSeries', () => {
  const Q = `query ($filter: EventFilter!, $step: String) { trafficSeries(filter: $filter, step: $step) {
    time ingressBytes egressBytes ingressPackets egressPackets } }`

  it('sums per minute by default', async () => {
    const r = await gql(h.api, Q, { filter: {} })
    assert.deepEqual(r.data.trafficSeries, [
      { time: iso(0), ingressBytes: 3000, egressBytes: 300, ingressPackets: 21, egressPackets: 41 },
      {
        time: iso(60 * S),
        ingressBytes: 7000,
        egressBytes: 700,
        ingressPackets: 25,
        egressPackets: 45,
      },
    ])
  })

  it('sums per step', async () => {
    const r = await gql(h.api, Q, { filter: {}, step: '30s' })
    assert.deepEqual(
      r.data.trafficSeries.map((p: { time: string; ingressBytes: number }) => [
        p.time,
        p.ingressBytes,
      ]),
      [
        [iso(0), 1000],
        [iso(30 * S), 2000],
        [iso(60 * S), 3000],
        [iso(90 * S), 4000],
      ],
    )
  })

  it('refuses a step it cannot read', async () => {
    const r = await gql(h.api, Q, { filter: {}, step: '1 MINUTE); DROP TABLE x' })
    assert.equal(r.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT')
    assert.match(r.errors![0]!.message, /^step must be a duration such as 30s/)
  })

  it('refuses a series longer than the server allows', async () => {
    const api = h.make({ limits: { maxSeriesPoints: 3 } })
    const r = await gql(api, Q, { filter: {}, step: '1s' })
    assert.equal(r.errors?.[0]?.extensions?.code, 'RESULT_TOO_LARGE')
  })
})

describe('syscallCounts', () => {
  it('orders syscalls by count', async () => {
    const r = await gql(h.api, `{ syscallCounts(filter: {}) { syscall nr count } }`)
    assert.deepEqual(r.data.syscallCounts, [
      { syscall: 'read', nr: 0, count: 760 },
      { syscall: 'write', nr: 1, count: 300 },
      { syscall: 'epoll_wait', nr: 232, count: 50 },
      { syscall: 'fsync', nr: 74, count: 40 },
      { syscall: 'accept4', nr: 288, count: 20 },
      { syscall: 'capset', nr: 126, count: 2 },
      { syscall: 'execve', nr: 59, count: 2 },
    ])
  })

  it('keeps the first N', async () => {
    const r = await gql(
      h.api,
      `{ syscallCounts(filter: {pod: "web-2"}, first: 1) { syscall count } }`,
    )
    assert.deepEqual(r.data.syscallCounts, [{ syscall: 'read', count: 200 }])
  })
})

describe('seccompProfile', () => {
  it('merges every replica and keeps the runtime apart', async () => {
    const r = await gql(
      h.api,
      `{ seccompProfile(namespace: "shop", pod: "web-1") { workloadKind workloadName pods observed
        defaultAction architectures syscalls { name nr count pods containers }
        runtimeSyscalls { name count pods } ociProfile manifest } }`,
    )
    assert.equal(r.errors, undefined)
    const p = r.data.seccompProfile
    assert.equal(p.workloadKind, 'Deployment')
    assert.equal(p.workloadName, 'web')
    assert.deepEqual(p.pods, ['web-1', 'web-2'])
    assert.equal(p.observed, true)
    assert.deepEqual(p.syscalls, [
      { name: 'accept4', nr: 288, count: 20, pods: ['web-2'], containers: ['web'] },
      { name: 'epoll_wait', nr: 232, count: 50, pods: ['web-1'], containers: ['web'] },
      { name: 'read', nr: 0, count: 700, pods: ['web-1', 'web-2'], containers: ['web'] },
      { name: 'write', nr: 1, count: 300, pods: ['web-1'], containers: ['web'] },
    ])
    assert.deepEqual(p.runtimeSyscalls, [
      { name: 'capset', count: 2, pods: ['web-1'] },
      { name: 'execve', count: 2, pods: ['web-1', 'web-2'] },
      { name: 'mount', count: 1, pods: ['web-1'] },
    ])
    const oci = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [{ names: ['accept4', 'epoll_wait', 'read', 'write'], action: 'SCMP_ACT_ALLOW' }],
    }
    assert.deepEqual(p.ociProfile, oci)
    assert.equal(p.manifest.apiVersion, 'security-profiles-operator.x-k8s.io/v1beta1')
    assert.equal(p.manifest.kind, 'SeccompProfile')
    // Cluster-scoped in the operator's CRD: the namespace is in the name.
    assert.deepEqual(p.manifest.metadata.name, 'shop-web')
    assert.equal(p.manifest.metadata.namespace, undefined)
    assert.equal(p.manifest.metadata.annotations['ebbflow.io/namespace'], 'shop')
    assert.deepEqual(p.manifest.spec, {
      defaultAction: oci.defaultAction,
      architectures: oci.architectures,
      syscalls: oci.syscalls,
    })
  })

  it('adds the runtime syscalls when asked', async () => {
    const r = await gql(
      h.api,
      `{ seccompProfile(namespace: "shop", pod: "web-2", includeRuntime: true) { ociProfile } }`,
    )
    assert.deepEqual(r.data.seccompProfile.ociProfile.syscalls[0].names, [
      'accept4',
      'capset',
      'epoll_wait',
      'execve',
      'mount',
      'read',
      'write',
    ])
  })

  it('narrows to one container, keeping the runtime rows', async () => {
    const r = await gql(
      h.api,
      `{ seccompProfile(namespace: "shop", pod: "db-0", container: "postgres") {
        workloadKind workloadName pods container syscalls { name count } runtimeSyscalls { name } } }`,
    )
    assert.deepEqual(r.data.seccompProfile, {
      workloadKind: 'StatefulSet',
      workloadName: 'db',
      pods: ['db-0'],
      container: 'postgres',
      syscalls: [
        { name: 'fsync', count: 40 },
        { name: 'read', count: 60 },
      ],
      runtimeSyscalls: [],
    })
    const none = await gql(
      h.api,
      `{ seccompProfile(namespace: "shop", pod: "web-1", container: "sidecar") {
        syscalls { name } runtimeSyscalls { name } } }`,
    )
    assert.deepEqual(none.data.seccompProfile, {
      syscalls: [],
      runtimeSyscalls: [{ name: 'capset' }, { name: 'execve' }, { name: 'mount' }],
    })
  })

  it('builds a namespace-wide profile without a pod', async () => {
    const r = await gql(
      h.api,
      `{ seccompProfile(namespace: "shop", from: "${iso(0)}", to: "${iso(3600 * S)}") {
        workloadKind pods from ociProfile } }`,
    )
    assert.deepEqual(r.data.seccompProfile.workloadKind, null)
    assert.deepEqual(r.data.seccompProfile.pods, ['db-0', 'web-1', 'web-2'])
    assert.equal(r.data.seccompProfile.from, iso(0))
    assert.deepEqual(r.data.seccompProfile.ociProfile.syscalls[0].names, [
      'accept4',
      'epoll_wait',
      'fsync',
      'read',
      'write',
    ])
  })

  it('is empty for a pod not seen', async () => {
    for (const [ns, pod] of [['shop', 'nope']]) {
      const r = await gql(
        h.api,
        `query ($ns: String!, $pod: String) { seccompProfile(namespace: $ns, pod: $pod) {
          observed pods syscalls { name } runtimeSyscalls { name } ociProfile } }`,
        { ns, pod },
      )
      assert.deepEqual(r.data.seccompProfile, {
        observed: false,
        pods: [],
        syscalls: [],
        runtimeSyscalls: [],
        ociProfile: {
          defaultAction: 'SCMP_ACT_ERRNO',
          defaultErrnoRet: 1,
          architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
          syscalls: [],
        },
      })
    }
  })
})

describe('networkPolicy', () => {
  const Q = `query ($ns: String!, $pod: String) { networkPolicy(namespace: $ns, pod: $pod) {
    workloadKind workloadName podSelector
    ingress { peer { kind namespace workload address labels } ports peerSpec evidence { port connections bytesSent bytesReceived firstSeen lastSeen } }
    egress { peer { kind namespace workload address labels } ports peerSpec evidence { port connections bytesSent bytesReceived firstSeen lastSeen } }
    manifest warnings } }`

  it('admits exactly the peers and ports seen by the web workload', async () => {
    const r = await gql(h.api, Q, { ns: 'shop', pod: 'web-2' })
    assert.equal(r.errors, undefined)
    const p = r.data.networkPolicy
    assert.equal(p.workloadKind, 'Deployment')
    assert.deepEqual(p.podSelector, { matchLabels: { app: 'web', tier: 'front' } })
    assert.deepEqual(p.ingress, [
      {
        peer: {
          kind: 'External',
          namespace: null,
          workload: null,
          address: '203.0.113.9',
          labels: null,
        },
        ports: [8080],
        peerSpec: { ipBlock: { cidr: '203.0.113.9/32' } },
        evidence: [
          {
            port: 8080,
            connections: 1,
            bytesSent: 4096,
            bytesReceived: 512,
            firstSeen: iso(43 * S),
            lastSeen: iso(44 * S),
          },
        ],
      },
    ])
    assert.deepEqual(p.egress, [
      {
        peer: {
          kind: 'External',
          namespace: null,
          workload: null,
          address: '93.184.216.34',
          labels: null,
        },
        ports: [443],
        peerSpec: { ipBlock: { cidr: '93.184.216.34/32' } },
        evidence: [
          {
            port: 443,
            connections: 1,
            bytesSent: 100,
            bytesReceived: 2000,
            firstSeen: iso(42 * S),
            lastSeen: iso(43 * S),
          },
        ],
      },
      {
        peer: {
          kind: 'Pod',
          namespace: 'shop',
          workload: 'StatefulSet/db',
          address: null,
          labels: { app: 'db' },
        },
        ports: [5432],
        peerSpec: { podSelector: { matchLabels: { app: 'db' } } },
        evidence: [
          {
            port: 5432,
            connections: 2,
            bytesSent: 1200,
            bytesReceived: 5300,
            firstSeen: iso(40 * S),
            lastSeen: iso(42 * S),
          },
        ],
      },
    ])
    assert.deepEqual(p.manifest, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'web-ebbflow',
        namespace: 'shop',
        annotations: { 'ebbflow.io/window': '..' },
      },
      spec: {
        podSelector: { matchLabels: { app: 'web', tier: 'front' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [{ ipBlock: { cidr: '203.0.113.9/32' } }],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
        egress: [
          {
            to: [{ ipBlock: { cidr: '93.184.216.34/32' } }],
            ports: [{ protocol: 'TCP', port: 443 }],
          },
          {
            to: [{ podSelector: { matchLabels: { app: 'db' } } }],
            ports: [{ protocol: 'TCP', port: 5432 }],
          },
        ],
      },
    })
  })

  it('selects a peer in another namespace by namespace and labels', async () => {
    const r = await gql(h.api, Q, { ns: 'bank', pod: 'ledger-1' }, TOKENS.both)
    assert.deepEqual(r.data.networkPolicy.manifest.spec.egress, [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
            podSelector: { matchLabels: { app: 'db' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
    ])
    assert.deepEqual(r.data.networkPolicy.manifest.spec.ingress, [])
  })

  it('admits clients into db from their own side, and outsiders from the accept side', async () => {
    const r = await gql(h.api, Q, { ns: 'shop', pod: 'db-0' })
    const p = r.data.networkPolicy
    assert.deepEqual(p.podSelector, { matchLabels: { app: 'db' } })
    assert.deepEqual(p.ingress, [
      {
        peer: {
          kind: 'External',
          namespace: null,
          workload: null,
          address: '10.1.0.5',
          labels: null,
        },
        ports: [5432],
        peerSpec: { ipBlock: { cidr: '10.1.0.5/32' } },
        evidence: [
          {
            port: 5432,
            connections: 1,
            bytesSent: 80,
            bytesReceived: 70,
            firstSeen: iso(44 * S + 10),
            lastSeen: iso(45 * S + 10),
          },
        ],
      },
      {
        // web-2's connection was only captured on web-2: db's own rows do not show it.
        peer: {
          kind: 'Pod',
          namespace: 'shop',
          workload: 'Deployment/web',
          address: null,
          labels: { app: 'web', tier: 'front' },
        },
        ports: [5432],
        peerSpec: { podSelector: { matchLabels: { app: 'web', tier: 'front' } } },
        evidence: [
          {
            port: 5432,
            connections: 2,
            bytesSent: 5300,
            bytesReceived: 1200,
            firstSeen: iso(40 * S),
            lastSeen: iso(42 * S),
          },
        ],
      },
    ])
    assert.deepEqual(p.egress, [])
  })

  it('names a client in another namespace for a token that reads both', async () => {
    const r = await gql(h.api, Q, { ns: 'shop', pod: 'db-0' }, TOKENS.both)
    assert.deepEqual(
      r.data.networkPolicy.manifest.spec.ingress.map((i: { from: unknown[] }) => i.from),
      [
        [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'bank' } },
            podSelector: { matchLabels: { app: 'ledger' } },
          },
        ],
        [{ podSelector: { matchLabels: { app: 'web', tier: 'front' } } }],
      ],
    )
  })

  it('refuses a namespace the token cannot read', async () => {
    const r = await gql(h.api, Q, { ns: 'bank', pod: 'ledger-1' })
    assert.equal(r.data, null)
    assert.deepEqual(
      r.errors?.map((e) => e.extensions?.code),
      ['FORBIDDEN_NAMESPACE'],
    )
  })
})

describe('collectorHealth', () => {
  const Q = `query ($node: String) { collectorHealth(node: $node) { node lastSeen totalDrops drops { family reason count } ingestLag { family latestMs } } }`

  it('sums drops per node for a token of every namespace', async () => {
    const r = await gql(h.api, Q, {}, TOKENS.admin)
    assert.deepEqual(r.data.collectorHealth, [
      {
        node: 'node-a',
        lastSeen: iso(30 * S),
        totalDrops: 9,
        drops: [
          { family: 'exec', reason: 'buffer_full', count: 5 },
          { family: 'net', reason: 'map_full', count: 4 },
        ],
        ingestLag: [{ family: 'exec', latestMs: 120 }],
      },
      {
        node: 'node-b',
        lastSeen: iso(40 * S),
        totalDrops: 0,
        drops: [{ family: 'syscall', reason: 'queue_full', count: 0 }],
        ingestLag: [],
      },
    ])
    const one = await gql(h.api, Q, { node: 'node-b' }, TOKENS.admin)
    assert.deepEqual(
      one.data.collectorHealth.map((x: { node: string }) => x.node),
      ['node-b'],
    )
  })

  it('is empty for a namespaced token (nodes are not a namespace)', async () => {
    const r = await gql(h.api, Q, {}, TOKENS.both)
    assert.deepEqual(r.data.collectorHealth, [])
  })
})
