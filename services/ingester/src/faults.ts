// Named fault points: exact moments of the ingester's work where a test (or an operator
// rehearsing a failure) can make it die, so a kill lands where a random SIGKILL rarely does.
// Off unless EBBFLOW_FAULT names one (read in config.ts); a pass costs one comparison.
//
//   ingest.before-insert   a block was fetched (and its plan committed), nothing of it stored
//   ingest.between-tables  one table took the block's rows, a later statement of the block
//                          (another event table, its lag or its ledger rows) has not run
//   ingest.after-insert    the block is stored, its offset not yet committed
//
// `between-tables` exists while a block takes several statements; with one statement per block
// it is hit only between the rows and the block's ledger.
import { writeSync } from 'node:fs'

export const FAULT_POINTS = [
  'ingest.before-insert',
  'ingest.between-tables',
  'ingest.after-insert',
] as const

export type FaultPoint = (typeof FAULT_POINTS)[number]

/** What happens at the point. `kill`: SIGKILL of the process itself, as an OOM kill would. */
export const FAULT_ACTIONS = ['kill'] as const

export interface FaultSpec {
  point: FaultPoint
  action: (typeof FAULT_ACTIONS)[number]
  /** The point fires on its `hit`-th pass (1: the first), so a kill can wait for some work. */
  hit: number
}

/** Parses `point:action[@n]`; returns the problem as a string when the text is not one. */
export function parseFaultSpec(text: string): FaultSpec | string {
  const m = /^([a-z.-]+):([a-z]+)(?:@(\d{1,9}))?$/.exec(text.trim())
  if (!m) return 'expected point:action[@n], e.g. ingest.after-insert:kill'
  const [, point, action, n] = m
  if (!(FAULT_POINTS as readonly string[]).includes(point!))
    return `unknown fault point ${point}; known: ${FAULT_POINTS.join(', ')}`
  if (!(FAULT_ACTIONS as readonly string[]).includes(action!))
    return `unknown fault action ${action}; known: ${FAULT_ACTIONS.join(', ')}`
  const hit = n === undefined ? 1 : Number(n)
  if (hit < 1) return '@n counts passes from 1'
  return { point: point as FaultPoint, action: action as FaultSpec['action'], hit }
}

/** Passes through the named points; fires the configured one. */
export class Faults {
  private readonly spec: FaultSpec | undefined
  private passes = 0

  constructor(spec?: FaultSpec) {
    this.spec = spec
  }

  /** Resolves at once, except at the armed point's pass, where the process dies. */
  async pass(point: FaultPoint): Promise<void> {
    if (this.spec?.point !== point) return
    if (++this.passes !== this.spec.hit) return
    // The line a test waits for, written synchronously: pino's destination writes in the
    // background and its flush does not wait for a write in flight, so the kill below lost
    // pino's line (seen under load). A JSON line in pino's shape, on the same stream.
    writeSync(
      2,
      `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, name: 'ingest', point, action: this.spec.action, msg: 'fault point reached' })}\n`,
    )
    process.kill(process.pid, 'SIGKILL')
    // SIGKILL is not delivered synchronously: nothing after the point may run meanwhile.
    await new Promise<never>(() => {})
  }
}

/** Nothing configured: every pass is a no-op. */
export const NO_FAULTS = new Faults()
