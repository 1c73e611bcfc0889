// Durations as Prometheus writes them (`90s`, `1m30s`, `2h`, `500ms`), in milliseconds.
import { EbbflowError } from '@ebbflow/common'

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const PART = /(\d+)(ms|s|m|h|d|w)/g

/** `0` and `0s` are zero; anything that is not a sequence of <number><unit> is refused. */
export function parseDuration(text: string): number {
  const s = text.trim()
  if (s === '0') return 0
  let total = 0
  let consumed = 0
  for (const m of s.matchAll(PART)) {
    if (m.index !== consumed) break
    total += Number(m[1]) * UNIT_MS[m[2]!]!
    consumed += m[0].length
  }
  if (consumed === 0 || consumed !== s.length)
    throw new EbbflowError('DURATION_INVALID', `"${text}" is not a duration (e.g. 30s, 1m30s, 2h)`)
  return total
}
