// Builds tests/support/open-storm.c once per process into a temp folder and returns its path.
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let built: string | undefined

export function openStormBinary(): string {
  if (built) return built
  const out = join(mkdtempSync(join(tmpdir(), 'ebbflow-open-storm-')), 'open-storm')
  const src = join(dirname(fileURLToPath(import.meta.url)), 'open-storm.c')
  execFileSync('clang', ['-O2', '-o', out, src], { stdio: ['ignore', 'ignore', 'inherit'] })
  built = out
  return out
}
