// The AWS Lambda runtime pieces the serverless tests run a function with: the Runtime Interface
// Emulator (built from its Go module) and the npm runtime client aws-lambda-ric. scripts/setup.sh
// puts both into .cache/, keyed by the hash of their pins, as computed here.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './kafka-broker.ts'

const root = join(import.meta.dirname, '../..')

function key(...files: string[]): string {
  const hash = createHash('sha256')
  for (const f of files) hash.update(readFileSync(join(import.meta.dirname, f)))
  return hash.digest('hex').slice(0, 16)
}

export function riePath(): string {
  return join(
    root,
    '.cache',
    `lambda-rie-${key('lambda-rie/go.mod', 'lambda-rie/go.sum')}`,
    'aws-lambda-rie',
  )
}

export function ricPath(): string {
  return join(
    root,
    '.cache',
    `lambda-ric-${key('lambda-ric/package.json')}`,
    'node_modules/aws-lambda-ric/index.mjs',
  )
}

/** Processes whose working directory is `dir`. */
function runningIn(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === dir) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

/** Why a function cannot run here, or undefined when it can. */
export function lambdaUnavailable(): string | undefined {
  if (!existsSync(riePath()))
    return `no Lambda Runtime Interface Emulator at ${riePath()}: run scripts/setup.sh`
  if (!existsSync(ricPath())) return `no aws-lambda-ric at ${ricPath()}: run scripts/setup.sh`
  return undefined
}

export interface RunningFunction {
  /** POSTs one event to the emulator's invoke endpoint; the body is the function's answer. */
  invoke(event: unknown): Promise<{ status: number; body: Record<string, unknown> }>
  /** What the emulator and the function printed. */
  output(): string
  stop(): Promise<void>
}

/**
 * Runs `handler` (module.function) of the function in `taskRoot` under the emulator, through
 * aws-lambda-ric, with `env` as the function's configuration. The emulator starts the runtime on
 * the first invocation, as Lambda does a cold start.
 */
export async function startFunction(
  taskRoot: string,
  handler: string,
  env: Record<string, string>,
): Promise<RunningFunction> {
  const invokePort = await freePort()
  const runtimePort = await freePort()
  let out = ''
  const child: ChildProcess = spawn(
    riePath(),
    [
      '--runtime-api-address',
      `127.0.0.1:${runtimePort}`,
      '--runtime-interface-emulator-address',
      `127.0.0.1:${invokePort}`,
      process.execPath,
      ricPath(),
      handler,
    ],
    {
      cwd: taskRoot,
      // Its own process group: stop() ends the emulator and the runtime it started together.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LAMBDA_TASK_ROOT: taskRoot,
        AWS_LAMBDA_FUNCTION_NAME: 'ebbflow-ingest',
        AWS_LAMBDA_FUNCTION_TIMEOUT: '60',
        AWS_REGION: 'us-east-1',
        ...env,
      },
    },
  )
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${invokePort}/2015-03-31/functions/function/invocations`
  // The emulator listens within milliseconds; wait for it with a deadline.
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${invokePort}/`, { signal: AbortSignal.timeout(1000) })
      break
    } catch {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the emulator did not start:\n${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    async invoke(event) {
      const res = await fetch(url, {
        method: 'POST',
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(60_000),
      })
      const text = await res.text()
      let body: Record<string, unknown>
      try {
        body = JSON.parse(text) as Record<string, unknown>
      } catch {
        body = { raw: text }
      }
      return { status: res.status, body }
    },
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGTERM')
        } catch {}
        const timer = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL')
          } catch {}
        }, 5000)
        await exited
        clearTimeout(timer)
      }
      // The emulator starts the runtime in a process group of its own and stops it on SIGTERM;
      // whatever still runs in this function's folder (a unique temporary one) is ours.
      for (const pid of runningIn(taskRoot)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }
      const deadline = Date.now() + 10_000
      while (runningIn(taskRoot).length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
    },
  }
}
