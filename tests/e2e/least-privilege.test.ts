// Least privilege, for real: `ebbflow collect` as the unprivileged user nobody (65534) with
// exactly CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (setpriv: inheritable and ambient, and a
// bounding set of only those) loads and attaches every program of the exec and net families
// and prints an exec this test runs; without any one of the three it refuses to start and
// names the one missing. (collect-cli.test.ts covers the run with no capability at all.)
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Proc } from '../support/proc.ts'

const root = join(import.meta.dirname, '../..')
const cli = join(root, 'services/cli/src/main.ts')
const skip =
  process.getuid?.() !== 0
    ? 'needs root to hand capabilities to another user'
    : spawnSync('setpriv', ['--version']).status !== 0
      ? 'setpriv (util-linux) is not installed'
      : false

const NEEDED = ['bpf', 'perfmon', 'net_admin'] as const
const BIT: Record<(typeof NEEDED)[number], number> = { net_admin: 12, perfmon: 38, bpf: 39 }

/** setpriv arguments: user nobody, no groups, exactly `caps` (lower-case names). */
function asNobodyWith(caps: readonly string[]): string[] {
  const list = caps.map((c) => `+${c}`).join(',')
  return [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    `--bounding-set=-all${list ? `,${list}` : ''}`,
    ...(list ? [`--inh-caps=-all,${list}`, `--ambient-caps=-all,${list}`] : ['--inh-caps=-all']),
    '--no-new-privs',
    process.execPath,
    cli,
    'collect',
    '--output',
    'json',
    '--families',
    'exec,net',
  ]
}

function capEff(pid: number): bigint {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapEff:'))!
  return BigInt(`0x${line.split(/\s+/)[1]}`)
}

describe('the collector with least privilege', { skip, timeout: 120_000 }, () => {
  it('runs as nobody with exactly CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN and captures an exec', async () => {
    const proc = new Proc(
      spawn('setpriv', asNobodyWith(NEEDED), { stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    try {
      await proc.output(/capture attached/, 'collect to attach as nobody', 60_000)
      // setpriv execs node in place: the collector is the child itself. Its uid and its
      // effective set are what the test asked for, nothing more.
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8')
      assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m)
      const want = NEEDED.reduce((m, c) => m | (1n << BigInt(BIT[c])), 0n)
      assert.equal(capEff(proc.pid).toString(16), want.toString(16))

      const marker = `ebbflow-leastpriv-${randomUUID()}`
      const printedBy = Date.now() + 15_000
      while (!proc.stdout.includes(marker) && Date.now() < printedBy) {
        spawnSync('/bin/echo', [marker])
        await new Promise((r) => setTimeout(r, 200))
      }
      const line = proc.stdout.split('\n').find((l) => l.includes(marker))
      assert.ok(line, `the exec was not printed: ${proc.stderr.slice(-1000)}`)
      const event = JSON.parse(line) as { kind: string; filename: string; args: string[] }
      assert.equal(event.kind, 'exec')
      assert.deepEqual(event.args, ['/bin/echo', marker])
    } finally {
      proc.child.kill('SIGTERM')
    }
    assert.equal(await proc.exit(60_000), 0, proc.stderr.slice(-2000))
  })

  it('refuses to start without any one of the three, naming the one missing', async () => {
    // The three runs at once: each is a node start-up, seconds on a loaded machine.
    const run = (missing: string) =>
      new Promise<{ missing: string; status: number | null; stderr: string }>((resolve) => {
        const child = spawn('setpriv', asNobodyWith(NEEDED.filter((c) => c !== missing)), {
          stdio: ['ignore', 'ignore', 'pipe'],
        })
        let stderr = ''
        child.stderr.on('data', (d) => {
          stderr += d
        })
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
        child.on('exit', (status) => {
          clearTimeout(timer)
          resolve({ missing, status, stderr })
        })
      })
    for (const r of await Promise.all(NEEDED.map(run))) {
      const name = `CAP_${r.missing.toUpperCase()}`
      assert.notEqual(r.status, 0, `${name} missing, yet it ran: ${r.stderr.slice(-500)}`)
      assert.match(r.stderr, new RegExp(`missing capabilit(y|ies) [A-Z_, ]*${name}`), r.stderr)
      for (const other of NEEDED.filter((c) => c !== r.missing))
        assert.doesNotMatch(
          r.stderr,
          new RegExp(`missing capabilit(y|ies) [A-Z_, ]*CAP_${other.toUpperCase()}\\b`),
          `${name} missing, but CAP_${other.toUpperCase()} named too`,
        )
    }
  })
})
