// `npm run bench`: runs every bench/<name>/main.ts in turn; each prints its JSON report and
// writes it to bench/reports/<name>.json.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const only = process.argv.slice(2)
let failed = 0
for (const name of readdirSync(import.meta.dirname).sort()) {
  const main = join(import.meta.dirname, name, 'main.ts')
  if (!existsSync(main) || (only.length > 0 && !only.includes(name))) continue
  process.stderr.write(`bench ${name}\n`)
  // --expose-gc lets a bench settle the heap before it measures memory.
  const r = spawnSync(process.execPath, ['--expose-gc', main], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exitCode = failed > 0 ? 1 : 0
