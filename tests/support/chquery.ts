// The clickhouse-go program (tests/support/chquery): Grafana's ClickHouse driver over HTTP.
// scripts/setup.sh builds it into .cache/, keyed by the hash of its sources and go.sum, so
// tests do not build it each time; a checkout without that build builds it here once.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '../..')
const source = join(import.meta.dirname, 'chquery')

/** Where setup.sh puts the binary: the same hash as its step computes (sha256sum of the files). */
export function chqueryPath(): string {
  const hash = createHash('sha256')
  for (const f of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(source, f)))
  return join(root, '.cache', `chquery-${hash.digest('hex').slice(0, 16)}`, 'chquery')
}

/** The binary, built now when setup.sh has not (needs Go; setup.sh installs it). */
export function chqueryBinary(): string {
  const bin = chqueryPath()
  if (existsSync(bin)) return bin
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: source, encoding: 'utf8' })
  if (r.error || r.status !== 0)
    throw new Error(
      `cannot build tests/support/chquery (run scripts/setup.sh): ${r.error?.message ?? r.stderr}`,
    )
  return bin
}

export interface ChQuery {
  id: string
  sql: string
}

export interface ChResult {
  id: string
  columns: { name: string; type: string }[]
  rows: unknown[][]
  error?: string
}

export interface ChConnection {
  /** host:port */
  addr: string
  path: string
  user?: string
  password?: string
  database?: string
}

/** Runs the queries through clickhouse-go (one connection pool), one result per query. */
export async function chquery(conn: ChConnection, queries: ChQuery[]): Promise<ChResult[]> {
  const child = spawn(chqueryBinary(), [], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.stdin.end(JSON.stringify({ user: 'default', ...conn, queries }))
  const code = await exited
  const results = out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ChResult)
  if (code !== 0) throw new Error(`chquery exited ${code}: ${err} ${out}`)
  return results
}
