// `ebbflow collect` as a user runs it: JSON lines on stdout for a marked exec, a clean stop on
// SIGTERM (exit 0, programs detached), and a clear refusal without privileges.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { bpftoolProgs } from '../support/bpf-stats.ts'
import { Proc } from '../support/proc.ts'

const root = join(import.meta.dirname, '../..')
const cli = join(root, 'services/cli/src/main.ts')
const skip = process.getuid?.() === 0 ? false : 'needs root to load BPF programs'

function attachedProgramIds(): Set<number> {
  return new Set(
    bpftoolProgs()
      .filter((p) => p.name?.startsWith('handle_'))
      .map((p) => p.id),
  )
}

describe('ebbflow collect', { skip, timeout: 180_000 }, () => {
  it('prints a marked exec as JSON and stops cleanly on SIGTERM', async () => {
    const before = attachedProgramIds()
    const proc = new Proc(
      spawn(process.execPath, [cli, 'collect', '--output', 'json', '--families', 'exec,net'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    try {
      // A deadline, not a sleep: start-up takes a second or two, longer on a loaded machine.
      await proc.output(/capture attached/, 'collect to attach', 30_000)
      assert.ok(attachedProgramIds().size >= before.size + 6, 'exec and net programs are loaded')
      const marker = `ebbflow-cli-${randomUUID()}`
      spawnSync('/bin/echo', [marker])
      await proc.output(new RegExp(marker), 'the exec to be printed', 10_000)
      const line = proc.stdout.split('\n').find((l) => l.includes(marker))
      assert.ok(line, 'the exec was printed on stdout')
      const event = JSON.parse(line) as {
        kind: string
        filename: string
        args: string[]
        time: string
      }
      assert.equal(event.kind, 'exec')
      assert.equal(event.filename, '/bin/echo')
      assert.deepEqual(event.args, ['/bin/echo', marker])
      assert.ok(Math.abs(Date.parse(event.time) - Date.now()) < 60_000, `time ${event.time} is now`)
    } finally {
      proc.child.kill('SIGTERM')
    }
    assert.equal(await proc.exit(60_000), 0, proc.stderr)
    assert.match(proc.stderr, /capture stopped/)
    const after = attachedProgramIds()
    assert.deepEqual(
      [...after].filter((id) => !before.has(id)),
      [],
      'every program was detached and unloaded',
    )
  })

  it('loads its programs and captures under a sampling profiler (SIGPROF every 100 µs)', async () => {
    // The verifier stops with EAGAIN while a signal is pending for the loading thread: with
    // node --cpu-prof the load failed every time, until the addon held signals during it.
    const dir = mkdtempSync(join(tmpdir(), 'ebbflow-cpu-prof-'))
    const proc = new Proc(
      spawn(
        process.execPath,
        [
          ...['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir],
          ...[cli, 'collect', '--output', 'json', '--families', 'exec'],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    )
    try {
      try {
        await proc.output(/capture attached/, 'collect to attach under the profiler', 60_000)
        const marker = `ebbflow-prof-${randomUUID()}`
        spawnSync('/bin/echo', [marker])
        await proc.output(new RegExp(marker), 'the exec to be printed', 10_000)
      } finally {
        proc.child.kill('SIGTERM')
      }
      assert.equal(await proc.exit(60_000), 0, proc.stderr)
      // The profiler ran the whole time: its profile holds samples from the start on.
      const [file] = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
      assert.ok(file, 'node wrote its CPU profile')
      const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { samples: number[] }
      assert.ok(profile.samples.length > 1000, `${profile.samples.length} samples`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses to start without privileges and names what is missing', () => {
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'collect'],
      {
        encoding: 'utf8',
      },
    )
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /missing capabilities CAP_BPF, CAP_PERFMON/)
    assert.match(r.stderr, /CAP_NET_ADMIN/)
  })

  it('reports every invalid setting at once and exits 2', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'collect', '--families', 'exec,disk', '--args-max', '99999'],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(r.status, 2)
    assert.match(r.stderr, /families \(EBBFLOW_FAMILIES\)/)
    assert.match(r.stderr, /argsMax \(EBBFLOW_ARGS_MAX\)/)
  })
})
