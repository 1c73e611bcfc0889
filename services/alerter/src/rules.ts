// Alert rules: YAML files of SQL rules, read and checked whole before anything runs. Every
// problem names its file and line, and all of them are reported at once.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { EbbflowError } from '@ebbflow/common'
import { isMap, isSeq, LineCounter, parseDocument, type YAMLMap } from 'yaml'
import { z } from 'zod'
import { parseDuration } from './duration.ts'

export type Comparison = '>' | '>=' | '<' | '<=' | '==' | '!='

/** Which rows of the result fire: every row, or the rows whose `value` passes a threshold. */
export type Condition = { kind: 'any' } | { kind: 'threshold'; op: Comparison; threshold: number }

export interface Rule {
  /** The alert's name (label `alertname`), unique across all files: the key of its state. */
  name: string
  file: string
  /** Line of the rule in its file (1-based). */
  line: number
  /** Line of the first line of the SQL text in its file. */
  sqlLine: number
  sql: string
  everyMs: number
  forMs: number
  keepFiringForMs: number
  condition: Condition
  /** Labels added to every instance (`severity` included when set). */
  labels: Record<string, string>
  /** Templates: `{{ $labels.name }}` and `{{ $value }}` are filled per instance. */
  annotations: Record<string, string>
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const LABEL = /^[A-Za-z_][A-Za-z0-9_]*$/
const CONDITION = /^\s*value\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*$/i

const duration = z
  .string()
  .or(z.number())
  .transform((v, ctx) => {
    try {
      return parseDuration(String(v))
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  })

const ruleSchema = z.strictObject({
  name: z.string().regex(NAME, 'a name of letters, digits and _ (not starting with a digit)'),
  sql: z.string().min(1),
  every: duration.default(60_000),
  for: duration.default(0),
  keep_firing_for: duration.default(0),
  severity: z.string().min(1).optional(),
  condition: z
    .string()
    .default('any')
    .transform((text, ctx): Condition => {
      if (text.trim() === 'any') return { kind: 'any' }
      const m = CONDITION.exec(text)
      if (!m) {
        ctx.addIssue({
          code: 'custom',
          message: `condition "${text}": expected "any" or "value <op> <number>" (op one of > >= < <= == !=)`,
        })
        return z.NEVER
      }
      return { kind: 'threshold', op: m[1] as Comparison, threshold: Number(m[2]) }
    }),
  labels: z
    .record(z.string().regex(LABEL, 'label names are letters, digits and _'), z.string())
    .default({}),
  annotations: z.record(z.string(), z.string()).default({}),
})

const fileSchema = z.strictObject({ rules: z.array(z.unknown()) })

/** The YAML files a --rules argument names: the file itself, or a folder's *.yaml / *.yml. */
export function ruleFiles(path: string): string[] {
  let stat: ReturnType<typeof statSync>
  try {
    stat = statSync(path)
  } catch (err) {
    throw new EbbflowError('RULES_NOT_FOUND', `rules: ${path} cannot be read`, { cause: err })
  }
  if (!stat.isDirectory()) return [path]
  return readdirSync(path)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(path, f))
}

export class RulesError extends EbbflowError {
  readonly problems: string[]
  constructor(problems: string[]) {
    super('RULES_INVALID', `invalid alert rules:\n  - ${problems.join('\n  - ')}`)
    this.name = 'RulesError'
    this.problems = problems
  }
}

/** Reads and checks every rule of `path` (a file or a folder); throws RulesError with all problems. */
export function loadRules(path: string): Rule[] {
  const problems: string[] = []
  const rules: Rule[] = []
  for (const file of ruleFiles(path))
    rules.push(...parseRuleFile(file, readFileSync(file, 'utf8'), problems))
  const seen = new Map<string, Rule>()
  for (const r of rules) {
    const first = seen.get(r.name)
    if (first)
      problems.push(
        `${r.file}:${r.line}: rule ${r.name} is also defined at ${first.file}:${first.line}; names must be unique`,
      )
    else seen.set(r.name, r)
  }
  if (problems.length > 0) throw new RulesError(problems)
  if (rules.length === 0) throw new RulesError([`${path}: no rules found`])
  return rules
}

/** The rules of one file's text; problems are appended, as `file:line: …`. */
export function parseRuleFile(file: string, text: string, problems: string[]): Rule[] {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? 1 : lines.linePos(offset).line
  if (doc.errors.length > 0) {
    for (const e of doc.errors)
      problems.push(`${file}:${lineOf(e.pos[0])}: ${e.message.split('\n')[0]}`)
    return []
  }
  const top = fileSchema.safeParse(doc.toJS())
  if (!top.success) {
    problems.push(`${file}:1: expected a mapping with a "rules" list`)
    return []
  }
  const seq = (doc.contents as YAMLMap | null)?.get('rules', true)
  const out: Rule[] = []
  const items = isSeq(seq) ? seq.items : []
  top.data.rules.forEach((raw, i) => {
    const node = items[i]
    const line = lineOf((node as { range?: [number] } | undefined)?.range?.[0])
    let sqlLine = line
    if (isMap(node)) {
      const sqlNode = node.get('sql', true) as { range?: [number] } | undefined
      // A block scalar (`sql: |`) starts on the line after its key.
      const at = lineOf(sqlNode?.range?.[0])
      const raw = text.split('\n')[at - 1] ?? ''
      sqlLine = /:\s*[|>][-+]?\s*$/.test(raw) ? at + 1 : at
    }
    const parsed = ruleSchema.safeParse(raw)
    if (!parsed.success) {
      const name = (raw as { name?: unknown })?.name
      for (const issue of parsed.error.issues)
        problems.push(
          `${file}:${line}: rule ${typeof name === 'string' ? name : `#${i + 1}`}: ${issue.path.join('.') || 'rule'}: ${issue.message}`,
        )
      return
    }
    const r = parsed.data
    if (r.every <= 0) {
      problems.push(`${file}:${line}: rule ${r.name}: every must be above zero`)
      return
    }
    out.push({
      name: r.name,
      file,
      line,
      sqlLine,
      sql: r.sql.trim().replace(/;\s*$/, ''),
      everyMs: r.every,
      forMs: r.for,
      keepFiringForMs: r.keep_firing_for,
      condition: r.condition,
      labels: { ...r.labels, ...(r.severity === undefined ? {} : { severity: r.severity }) },
      annotations: r.annotations,
    })
  })
  return out
}

/** Whether a row's value passes the rule's condition. */
export function passes(condition: Condition, value: number): boolean {
  if (condition.kind === 'any') return true
  const t = condition.threshold
  switch (condition.op) {
    case '>':
      return value > t
    case '>=':
      return value >= t
    case '<':
      return value < t
    case '<=':
      return value <= t
    case '==':
      return value === t
    case '!=':
      return value !== t
  }
}

/** `{{ $labels.name }}` and `{{ $value }}` (Prometheus' names) filled from one instance. */
export function expandTemplate(
  template: string,
  labels: Readonly<Record<string, string>>,
  value: number,
): string {
  return template.replace(
    /\{\{\s*\$(labels\.([A-Za-z_][A-Za-z0-9_]*)|value)\s*\}\}/g,
    (_, _w, label) => (label === undefined ? String(value) : (labels[label as string] ?? '')),
  )
}
