// The built-in rule pack (infra/alerts) against chDB: every rule passes --check, and each fires
// on rows that should fire it and stays silent on rows that should not. The rows go in through
// the store's insert path (exec sessions with containers need the Kubernetes names the
// collector adds in a cluster; the real-path capture of sessions is covered by the session tests).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Alerter, checkRules, loadRules, type Rule } from '@ebbflow/alerter'
import { createLogger } from '@ebbflow/common'
import { ChdbStore, migrate } from '@ebbflow/store'

const RULES_DIR = fileURLToPath(new URL('../../infra/alerts', import.meta.url))
const logger = createLogger('alert-rules-test', 'silent')
const S = 1000
const TS = Math.floor(Date.now() / S) * S
const at = (msBefore: number) =>
  new Date(TS - msBefore).toISOString().replace('T', ' ').replace('Z', '')

const pod = (namespace: string, name: string, container: string, workload: string) => ({
  node: 'n1',
  namespace,
  pod: name,
  container,
  workload_kind: workload ? 'Deployment' : '',
  workload_name: workload,
})
const web = pod('shop', 'web-1', 'app', 'web')

describe('built-in alert rules', { timeout: 60_000 }, () => {
  let dir: string
  let store: ChdbStore
  let rules: Map<string, Rule>

  /** The rule's active alerts after one evaluation at TS + afterMs, as label sets. */
  const activeAfterEvaluation = async (name: string, afterMs = 0) => {
    const rule = rules.get(name)!
    const alerter = new Alerter(
      [rule],
      {
        alertmanagers: [],
        webhooks: [],
        resend: 60 * S,
        lagMargin: 0,
        deliveryHorizon: 3600 * S,
        httpTimeout: S,
        webhookAttempts: 1,
        replica: 'test',
      },
      { store, logger, now: () => TS + afterMs },
    )
    const result = await alerter.evaluateRule(rule)
    assert.equal(
      result.outcome === 'evaluated' && result.health !== 'error',
      true,
      JSON.stringify(result),
    )
    const active = await alerter.state.loadActive(name)
    return [...active.values()]
      .map((a) => ({ state: a.state, labels: a.labels }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ebbflow-alert-rules-'))
    store = await ChdbStore.open(dir)
    await migrate(store)
    rules = new Map(loadRules(RULES_DIR).map((r) => [r.name, r]))
  })
  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('every rule passes --check', async () => {
    assert.deepEqual([...rules.keys()].sort(), [
      'CollectorLosingEvents',
      'CollectorSilent',
      'IngestFallingBehind',
      'InteractiveShellInContainer',
      'NewDestination',
      'SeccompDrift',
      'SystemPathWrittenInContainer',
    ])
    assert.deepEqual(await checkRules(store, [...rules.values()]), [])
  })

  it('InteractiveShellInContainer: a shell as the first command of a session in a container', async () => {
    const exec = (p: object, session: string, filename: string, msBefore: number) => ({
      ...p,
      time: at(msBefore),
      kind: 'exec',
      session,
      filename,
      comm: filename.split('/').pop(),
    })
    await store.insert('ebbflow.process_events', [
      exec(web, 's-shell', '/bin/bash', 20 * S), // fires
      exec(web, 's-shell', '/usr/bin/id', 19 * S),
      exec(web, 's-ls-first', '/usr/bin/ls', 20 * S), // a shell, but not first: silent
      exec(web, 's-ls-first', '/bin/sh', 18 * S),
      exec(pod('', '', '', ''), 's-host', '/bin/bash', 20 * S), // not in a container: silent
      exec(web, 's-old', '/bin/bash', 2 * 3600 * S), // first command before the window: silent
      exec(web, 's-old', '/usr/bin/ls', 10 * S),
    ])
    assert.deepEqual(await activeAfterEvaluation('InteractiveShellInContainer'), [
      {
        state: 'firing',
        labels: {
          namespace: 'shop',
          pod: 'web-1',
          container: 'app',
          session: 's-shell',
          shell: 'bash',
          severity: 'warning',
          alertname: 'InteractiveShellInContainer',
        },
      },
    ])
  })

  it('NewDestination: an address and port not seen for the workload in 7 days', async () => {
    const connect = (p: object, daddr: string, dport: number, msBefore: number) => ({
      ...p,
      time: at(msBefore),
      event: 'connect',
      role: 'active',
      daddr: `::ffff:${daddr}`,
      dport,
      comm: 'curl',
    })
    const fresh = pod('shop', 'fresh-1', 'app', 'fresh')
    await store.insert('ebbflow.tcp_connections', [
      connect(web, '10.0.0.1', 5432, 3600 * S), // learned
      connect(web, '10.0.0.9', 443, 10 * S), // new: fires
      connect(web, '10.0.0.1', 5432, 10 * S), // seen: silent
      connect(web, '10.0.0.1', 6432, 10 * S), // same address, new port: fires
      connect(fresh, '10.0.0.9', 443, 10 * S), // a workload with nothing learned: silent
    ])
    const labels = (destination: string, port: string) => ({
      namespace: 'shop',
      workload_kind: 'Deployment',
      workload: 'web',
      destination,
      port,
      severity: 'info',
      alertname: 'NewDestination',
    })
    assert.deepEqual(await activeAfterEvaluation('NewDestination'), [
      { state: 'firing', labels: labels('::ffff:10.0.0.1', '6432') },
      { state: 'firing', labels: labels('::ffff:10.0.0.9', '443') },
    ])
  })

  it('SystemPathWrittenInContainer: a container writing under /etc, /usr or /bin', async () => {
    const file = (p: object, path: string, access: string, msBefore: number) => ({
      ...p,
      time: at(msBefore),
      path,
      access,
      op: 'open',
      comm: 'apt',
      count: 1,
    })
    await store.insert('ebbflow.file_accesses', [
      file(web, '/etc/passwd', 'write', 20 * S), // fires
      file(web, '/usr/bin/nc', 'create', 15 * S), // fires
      { ...file(web, '/etc/shadow', 'truncate', 10 * S), op: 'truncate' }, // truncate(2): fires
      file(web, '/etc/hosts', 'read', 20 * S), // a read: silent
      file(web, '/etcetera/x', 'write', 20 * S), // not /etc: silent
      file(web, '/tmp/x', 'write', 20 * S), // not a system folder: silent
      file(pod('', '', '', ''), '/etc/motd', 'write', 20 * S), // the host, no container: silent
      file(web, '/bin/sh', 'write', 2 * 3600 * S), // before the window: silent
    ])
    const labels = (path: string) => ({
      namespace: 'shop',
      pod: 'web-1',
      container: 'app',
      path,
      severity: 'warning',
      alertname: 'SystemPathWrittenInContainer',
    })
    assert.deepEqual(await activeAfterEvaluation('SystemPathWrittenInContainer'), [
      { state: 'firing', labels: labels('/etc/passwd') },
      { state: 'firing', labels: labels('/etc/shadow') },
      { state: 'firing', labels: labels('/usr/bin/nc') },
    ])
  })

  it("SeccompDrift: a syscall outside the workload's learned set", async () => {
    const count = (p: object, syscall: string, msBefore: number) => ({
      ...p,
      time: at(msBefore),
      interval_ns: 1_000_000_000,
      syscall,
      count: 3,
    })
    const api = pod('bank', 'api-1', 'app', 'api')
    await store.insert('ebbflow.syscall_counts', [
      count(web, 'read', 3600 * S), // learned
      count(web, 'write', 3600 * S),
      count(web, 'read', 10 * S), // learned: silent
      count(web, 'ptrace', 10 * S), // drift: fires
      count(api, 'ptrace', 10 * S), // nothing learned for this workload: silent
    ])
    assert.deepEqual(await activeAfterEvaluation('SeccompDrift'), [
      {
        state: 'firing',
        labels: {
          namespace: 'shop',
          workload_kind: 'Deployment',
          workload: 'web',
          container: 'app',
          syscall: 'ptrace',
          severity: 'warning',
          alertname: 'SeccompDrift',
        },
      },
    ])
  })

  it('CollectorLosingEvents, IngestFallingBehind (after its `for`), CollectorSilent', async () => {
    const stat = (
      node: string,
      metric: string,
      family: string,
      value: number,
      msBefore: number,
    ) => ({
      time: at(msBefore),
      node,
      metric,
      family,
      reason: metric === 'drops' ? 'buffer_full' : '',
      value,
    })
    await store.insert('ebbflow.collector_stats', [
      stat('node-a', 'drops', 'exec', 5, 60 * S), // fires
      stat('node-b', 'drops', 'net', 7, 10 * 60 * S), // older than 5 minutes: silent (but node-b is silent)
      stat('node-c', 'drops', 'syscall', 0, 30 * S), // zero: silent
      stat('node-a', 'ingest_lag_ms', 'exec', 120_000, 30 * S), // fires after for (2m)
      stat('node-c', 'ingest_lag_ms', 'net', 500, 30 * S), // under the threshold: silent
      stat('node-q', 'drops', 'exec', 0, 10 * 60 * S), // last heard of 10 minutes ago: silent node
    ])
    assert.deepEqual(await activeAfterEvaluation('CollectorLosingEvents'), [
      {
        state: 'firing',
        labels: {
          node: 'node-a',
          family: 'exec',
          severity: 'warning',
          alertname: 'CollectorLosingEvents',
        },
      },
    ])
    const lag = {
      node: 'node-a',
      family: 'exec',
      severity: 'warning',
      alertname: 'IngestFallingBehind',
    }
    assert.deepEqual(await activeAfterEvaluation('IngestFallingBehind'), [
      { state: 'pending', labels: lag },
    ])
    assert.deepEqual(await activeAfterEvaluation('IngestFallingBehind', 120 * S), [
      { state: 'firing', labels: lag },
    ])
    const silent = (node: string) => ({
      state: 'firing',
      labels: { node, severity: 'critical', alertname: 'CollectorSilent' },
    })
    // n1 (the workloads above), node-a and node-c reported within 5 minutes.
    assert.deepEqual(await activeAfterEvaluation('CollectorSilent'), [
      silent('node-b'),
      silent('node-q'),
    ])
  })
})
