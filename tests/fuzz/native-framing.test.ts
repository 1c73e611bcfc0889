// The native addon's batch framing (native/src/framing.h) under AddressSanitizer and
// UndefinedBehaviorSanitizer: the harness in native/fuzz feeds it scripts of random, empty and
// truncated records and checks every batch against what it appended. libFuzzer drives it when
// clang has its runtime (setup installs it), the harness's own random driver otherwise.
// CI runs it for a few seconds, `npm run soak` (EBBFLOW_SOAK=1) for five minutes.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fuzzProfile } from './profile.ts'

const root = join(import.meta.dirname, '../..')
const native = join(root, 'native')
const binary = join(native, 'build/framing-fuzz')
const seconds = fuzzProfile.soak ? 300 : 4

describe('native framing under sanitizers', { timeout: (seconds + 120) * 1000 }, () => {
  it(`runs ${seconds} s of fuzzed records without a crash, leak or undefined behaviour`, () => {
    execFileSync('make', ['-s', '-C', native, 'fuzz'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const kind = readFileSync(`${binary}.kind`, 'utf8').trim()
    const args =
      kind === 'libfuzzer'
        ? [
            `-max_total_time=${seconds}`,
            `-seed=${fuzzProfile.seed >>> 0 || 1}`,
            '-rss_limit_mb=1024',
          ]
        : [String(seconds), String(fuzzProfile.seed >>> 0)]
    // libFuzzer writes a crashing input to its working directory: a temp one, kept on failure.
    const work = mkdtempSync(join(tmpdir(), 'ebbflow-framing-fuzz-'))
    const run = spawnSync(binary, args, {
      cwd: work,
      encoding: 'utf8',
      timeout: (seconds + 60) * 1000,
      // A leak fails the run like a crash does.
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1' },
    })
    const output = `${run.stdout}\n${run.stderr}`
    assert.equal(run.signal, null, `harness killed by ${run.signal}:\n${output.slice(-4000)}`)
    assert.equal(run.status, 0, `harness failed (inputs kept in ${work}):\n${output.slice(-4000)}`)
    rmSync(work, { recursive: true, force: true })
    const done = /Done (\d+) runs in (\d+) second/.exec(output)
    assert.ok(done, `no run count in the harness's output:\n${output.slice(-2000)}`)
    const runs = Number(done[1])
    assert.ok(runs > 1000, `only ${runs} inputs in ${seconds} s`)
    fuzzProfile.report('native-framing', { engine: kind, runs, seconds, crashes: 0 })
  })
})
