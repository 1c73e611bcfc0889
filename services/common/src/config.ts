// The one way every service reads its configuration: explicit values (CLI flags) first, then
// the environment variables named for each setting, then the schema's defaults. Every problem
// the schema finds is reported, named by setting and variable, together.
import { z } from 'zod'

/** A comma-separated setting as its trimmed, non-empty items. */
export const commaList = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
)

export interface ParsedConfig<T> {
  /** Present when the schema accepted the values (cross-field checks are the caller's). */
  data: T | undefined
  problems: string[]
}

export function parseConfig<S extends z.ZodType>(
  schema: S,
  envNames: Readonly<Record<string, string>>,
  explicit: Readonly<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv,
  options: { emptyIsUnset?: boolean } = {},
): ParsedConfig<z.output<S>> {
  const raw: Record<string, string> = {}
  for (const [key, name] of Object.entries(envNames)) {
    const value = explicit[key] ?? env[name]
    if (value === undefined || (options.emptyIsUnset && value === '')) continue
    raw[key] = value
  }
  const parsed = schema.safeParse(raw)
  if (parsed.success) return { data: parsed.data, problems: [] }
  return {
    data: undefined,
    problems: parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '')
      const name = envNames[key]
      const got = key in raw ? ` (got ${JSON.stringify(raw[key])})` : ''
      return `${key}${name ? ` (${name})` : ''}: ${issue.message}${got}`
    }),
  }
}

/**
 * Reads several configurations and keeps every problem: `attempt` returns undefined for a
 * configuration that failed, `throwIfAny` then reports all the problems of all of them at once.
 */
export class ConfigProblems {
  readonly problems: string[] = []

  attempt<T>(load: () => T): T | undefined {
    try {
      return load()
    } catch (err) {
      const problems = (err as { problems?: unknown }).problems
      if (!(err instanceof Error) || !Array.isArray(problems)) throw err
      this.problems.push(...(problems as string[]))
      return undefined
    }
  }
}
