// The fuzz suites' two profiles: CI's short one (seconds) and the soak one that `npm run soak`
// selects with EBBFLOW_SOAK=1 (the counts: a million cases per decoder). The seed is
// random unless EBBFLOW_FUZZ_SEED repeats a run; it is printed, and fast-check prints the
// failing case's seed and path, so any failure can be replayed.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const soak = process.env.EBBFLOW_SOAK === '1'
const seedText = process.env.EBBFLOW_FUZZ_SEED
const seed = seedText ? Number(seedText) : Math.floor(Math.random() * 2 ** 31)
if (!Number.isInteger(seed))
  throw new Error(`EBBFLOW_FUZZ_SEED must be an integer, got ${seedText}`)

const reports = join(import.meta.dirname, '../../bench/reports')

export const fuzzProfile = {
  soak,
  seed,
  /** `ci` cases in CI, `soakCases` under EBBFLOW_SOAK=1. */
  cases(ci: number, soakCases: number): number {
    return soak ? soakCases : ci
  },
  /** Writes a suite's figures to bench/reports/fuzz-<name>.json (for bench/RESULTS.md). */
  report(name: string, figures: Record<string, unknown>): void {
    mkdirSync(reports, { recursive: true })
    const body = { name, profile: soak ? 'soak' : 'ci', seed, ...figures }
    writeFileSync(join(reports, `fuzz-${name}.json`), `${JSON.stringify(body, null, 2)}\n`)
    process.stdout.write(`# fuzz ${JSON.stringify(body)}\n`)
  },
}
