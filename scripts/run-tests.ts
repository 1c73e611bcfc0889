// The test command: every test file of the project through node's test runner, the spec
// report on stdout, and a closing "N passed, N failed, N skipped" line.
// Usage: node scripts/run-tests.ts [file or glob ...]
import { dirname, join } from 'node:path'
import { run } from 'node:test'
import { spec } from 'node:test/reporters'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const patterns = process.argv.slice(2)
const globs =
  patterns.length > 0
    ? patterns
    : ['services/*/test/**/*.test.ts', 'native/test/**/*.test.ts', 'tests/**/*.test.ts']

let passed = 0
let failed = 0
let skipped = 0
// One file at a time: kernel tests share the machine's BPF hooks and its two cores.
// The timeout is a backstop for every test and suite that sets none of its own: a stuck stream
// fails its test instead of hanging the run.
const stream = run({
  globPatterns: globs,
  cwd: root,
  concurrency: 1,
  isolation: 'process',
  timeout: 10 * 60_000,
})
stream.on('test:pass', (event) => {
  // A skipped suite never runs its tests: it counts as one skip (with its reason in the report).
  if (event.details.type === 'suite' && !event.skip) return
  if (event.skip || event.todo) skipped++
  else passed++
})
stream.on('test:fail', (event) => {
  if (
    event.details.type === 'suite' &&
    (event.details.error as { failureType?: string } | undefined)?.failureType === 'subtestsFailed'
  )
    return
  failed++
})
stream.compose(spec).pipe(process.stdout)
stream.on('end', () => {
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0
})
