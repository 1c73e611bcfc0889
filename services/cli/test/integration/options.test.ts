// The CLI's options against the services' configuration schemas: every field of every schema a
// command configures has a flag in that command's real `--help`, with its environment variable
// and a default; and a generated flag's value reaches the configuration (checked through what
// the command does with it).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { alerterConfigSchema, alerterEnvNames } from '@ebbflow/alerter/config'
import { apiConfigSchema, apiEnvNames } from '@ebbflow/api/config'
import { collectorConfigSchema, collectorEnvNames } from '@ebbflow/collector/config'
import { enrichConfigSchema, enrichEnvNames } from '@ebbflow/collector/enrich/config'
import { ingesterConfigSchema, ingesterEnvNames } from '@ebbflow/ingester/config'
import { storeConfigSchema, storeEnvNames } from '@ebbflow/store/config'

const cli = join(import.meta.dirname, '../../src/main.ts')

/** The environment without EBBFLOW_* (and the other variables the settings read). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const k of Object.keys(env))
    if (k.startsWith('EBBFLOW_') || k === 'NODE_NAME' || k === 'KUBECONFIG') delete env[k]
  return env
}

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI; several at once, as each spends most of its time loading modules. */
async function ebbflow(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<Run> {
  try {
    const r = await promisify(execFile)(process.execPath, [cli, ...args], { env, timeout: 60_000 })
    return { status: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { status: e.code ?? null, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) }
  }
}

/** The option entries of a help text, each on one line (commander wraps long ones). */
function optionEntries(help: string): string[] {
  const lines = help.slice(help.indexOf('Options:')).split('\n').slice(1)
  const entries: string[] = []
  for (const line of lines) {
    if (/^ {2}-/.test(line)) entries.push(line.trim())
    else if (/^ {3,}\S/.test(line) && entries.length > 0)
      entries[entries.length - 1] += ` ${line.trim()}`
    else if (line.trim() !== '') break
  }
  return entries.map((e) => e.replace(/\s+/g, ' '))
}

interface Schema {
  shape: Record<string, unknown>
}

type Part = [schema: Schema, env: Readonly<Record<string, string>>, leftOut: readonly string[]]

// What each command configures, and the fields it decides itself (with the reason).
const STORE_ONLY_MIGRATE = ['kafkaEngine', 'cluster'] // ClickHouse-side setup, `migrate` only
const COMMANDS: Record<string, Part[]> = {
  collect: [
    [collectorConfigSchema, collectorEnvNames, []],
    [enrichConfigSchema, enrichEnvNames, []],
  ],
  ingest: [
    [ingesterConfigSchema, ingesterEnvNames, []],
    [storeConfigSchema, storeEnvNames, STORE_ONLY_MIGRATE],
  ],
  // The API never migrates, so the retention is not its to set.
  api: [
    [apiConfigSchema, apiEnvNames, []],
    [storeConfigSchema, storeEnvNames, [...STORE_ONLY_MIGRATE, 'retentionDays']],
  ],
  alert: [
    [alerterConfigSchema, alerterEnvNames, []],
    [storeConfigSchema, storeEnvNames, STORE_ONLY_MIGRATE],
  ],
  migrate: [[storeConfigSchema, storeEnvNames, []]],
  // up picks the collector's output (in-process or --kafka) and the ingester's source itself,
  // and runs the alerter on a schedule, never once or as a check.
  up: [
    [collectorConfigSchema, collectorEnvNames, ['output']],
    [enrichConfigSchema, enrichEnvNames, []],
    [ingesterConfigSchema, ingesterEnvNames, ['knativePort']],
    [apiConfigSchema, apiEnvNames, []],
    [alerterConfigSchema, alerterEnvNames, ['once', 'check']],
    [storeConfigSchema, storeEnvNames, STORE_ONLY_MIGRATE],
  ],
}

describe('ebbflow <command> --help', { timeout: 120_000 }, () => {
  const helps = new Map<string, Run>()
  before(async () => {
    const commands = Object.keys(COMMANDS)
    const runs = await Promise.all(commands.map((c) => ebbflow([c, '--help'])))
    for (const [i, c] of commands.entries()) helps.set(c, runs[i]!)
  })

  for (const [command, parts] of Object.entries(COMMANDS)) {
    it(`${command}: every setting has a flag, its variable and its default (or required)`, () => {
      const r = helps.get(command)!
      assert.equal(r.status, 0, r.stderr)
      const entries = optionEntries(r.stdout)
      const missing: string[] = []
      const expectedEnv = new Set<string>()
      for (const [schema, env, leftOut] of parts) {
        for (const field of Object.keys(schema.shape)) {
          if (leftOut.includes(field)) continue
          const name = env[field]
          assert.ok(name, `${field} has an environment name in its service's config`)
          expectedEnv.add(name)
          const entry = entries.find((e) => e.includes(`(env ${name};`))
          if (
            !entry ||
            !/^--[a-z][a-z-]*/.test(entry) ||
            !/; (default [^)]+|required)\)$/.test(entry)
          )
            missing.push(`${field} (${name})`)
        }
      }
      assert.deepEqual(missing, [], `settings without a flag in ${command} --help`)
      // And no option reads a variable no setting of the command has.
      const stray = entries
        .map((e) => /\(env ([A-Z_]+);/.exec(e)?.[1])
        .filter((n): n is string => n !== undefined && !expectedEnv.has(n))
      assert.deepEqual(stray, [])
    })
  }
})

describe('generated flags reach the configuration', { timeout: 120_000 }, () => {
  it('migrate --print: --retention-days, else EBBFLOW_RETENTION_DAYS, else 30', async () => {
    const ttlDays = (r: Run) => {
      assert.equal(r.status, 0, r.stderr)
      // The event tables' TTL (a fixed one-day TTL elsewhere is no retention).
      const ttl = /TTL toDateTime\(time\) \+ INTERVAL (\d+) DAY/g
      return [...new Set([...r.stdout.matchAll(ttl)].map((m) => m[1]))]
    }
    const [env, both, neither] = await Promise.all([
      ebbflow(['migrate', '--print'], { ...cleanEnv(), EBBFLOW_RETENTION_DAYS: '9' }),
      ebbflow(['migrate', '--print', '--retention-days', '7'], {
        ...cleanEnv(),
        EBBFLOW_RETENTION_DAYS: '9',
      }),
      ebbflow(['migrate', '--print']),
    ])
    assert.deepEqual(ttlDays(env!), ['9'])
    assert.deepEqual(ttlDays(both!), ['7'])
    assert.deepEqual(ttlDays(neither!), ['30'])
  })

  it('bad values of several services are reported together, by setting and variable', async () => {
    const r = await ebbflow([
      'up',
      '--proc-scan-max',
      '-1',
      '--max-pods',
      'many',
      '--max-rows',
      '0',
      '--max-depth',
      '1',
    ])
    assert.equal(r.status, 2, r.stderr)
    for (const expected of [
      'procScanMax (EBBFLOW_PROC_SCAN_MAX)',
      'maxPods (EBBFLOW_MAX_PODS)',
      'maxRows (EBBFLOW_INGEST_MAX_ROWS)',
      'maxDepth (EBBFLOW_API_MAX_DEPTH)',
    ])
      assert.ok(r.stderr.includes(expected), `${expected} in ${r.stderr}`)
  })
})
