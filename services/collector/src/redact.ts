// Secrets typed on command lines are replaced before an exec leaves the collector (the sink:
// Kafka, the in-process queue, JSON lines), so no later stage, log or query can show them.
//
// A rule is a regular expression matched against each argument on its own (the shape
// Tetragon's redaction filters take: the capture groups are what is replaced, and a rule can
// be limited to some binaries). Two things a per-argument regex cannot see are rules too:
// a flag whose value is the next argument (`--password X`), and a binary-specific form
// (`mysql -pX`). Defaults cover the common forms; a JSON file adds more (see RedactRule).
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { ConfigError, type ExecEvent } from '@ebbflow/common'
import { z } from 'zod'

/** What replaces a secret. */
export const REDACTED = '*****'

export interface RedactRule {
  /** Shown in the rules file's errors and the README. */
  name: string
  /** Matched against each argument; its capture groups (the whole match without groups)
   * are replaced. Case-insensitive. */
  arg?: string
  /** An argument matching this makes the next argument a secret, wholly replaced. */
  nextArg?: string
  /** Applies only when the executable's base name matches (e.g. `^mysql`). */
  binary?: string
}

const SECRET_WORD =
  '(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|client[-_]?secret|credentials?|auth(?:[-_]?token)?|session[-_]?key|sig(?:nature)?)'

/**
 * A run of name characters with a secret word in it, as a lookahead the run itself follows
 * (RUN_WITH_SECRET then `[\w.-]*`): the same matches as `[\w.-]*` SECRET_WORD `[\w.-]*`, in
 * time linear in the argument. That form read the rest of the run again from every secret
 * word in it before finding what follows the run missing: 4–8 ms of CPU per exec for a 4 KB
 * argument made of the word repeated, which any pod can exec at will.
 */
const RUN_WITH_SECRET = `(?=[\\w.-]*?${SECRET_WORD})`

/** The defaults (documented in README "Secrets in command lines"). */
export const DEFAULT_REDACT_RULES: readonly RedactRule[] = [
  // --password=X, -password=X, --db-token=X, --client-secret:X
  { name: 'flag=value', arg: `^--?${RUN_WITH_SECRET}[\\w.-]*[=:](.+)$` },
  // --password X, --token X (the value is the next argument)
  { name: 'flag value', nextArg: `^--?${RUN_WITH_SECRET}[\\w.-]*$` },
  // AWS_SECRET_ACCESS_KEY=X, DB_PASSWORD=X, GITHUB_TOKEN=X: environment-style assignments
  {
    name: 'NAME=value',
    arg: '^(?=(?:[A-Za-z_][A-Za-z0-9_.]*?)?(?:SECRET|PASSWORD|PASSWD|PASS|PWD|TOKEN|KEY|CREDENTIALS?|AUTH))[A-Za-z0-9_.]*=(.+)$',
  },
  // curl -H 'Authorization: Bearer X', 'Proxy-Authorization: Basic X', 'X-Api-Key: X'. An X-
  // header's name starts with its X- (the lookbehind): tried from every "x-" of a long name,
  // the rest of the name was read again each time, 8 ms of CPU for "x-x-x-…" of 4 KB.
  {
    name: 'auth header',
    arg: '(?:authorization|(?<![\\w-])x-[\\w-]*(?:token|key|secret))\\s*:\\s*(?:(?:bearer|basic|token|digest|negotiate)\\s+)?(.+)$',
  },
  // a bare "Bearer X"
  { name: 'bearer', arg: '\\bbearer\\s+(\\S+)' },
  // https://user:pass@host, postgres://u:p@db/x. Tried only where a run of scheme characters
  // starts (the lookbehind), the scheme from its first letter on: tried from every letter of
  // a long run, the run was read again each time, 17 ms of CPU for a 4 KB argument of letters.
  {
    name: 'url credentials',
    arg: '(?<![a-z0-9+.-])[0-9+.-]*[a-z][a-z0-9+.-]*://[^/\\s:@]*:([^/\\s@]+)@',
  },
  // ?token=X&…, ;password=X
  { name: 'query parameter', arg: `[?&;]${RUN_WITH_SECRET}[\\w.-]*=([^&;\\s]+)` },
  // {"password": "X"}
  { name: 'json field', arg: `"${RUN_WITH_SECRET}[\\w.-]*"\\s*:\\s*"([^"]*)"` },
  // A PEM private key passed inline, to its end or to the end of the argument
  {
    name: 'pem private key',
    arg: '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----([\\s\\S]*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)',
  },
  // mysql -pX (mysql, mysqldump, mysqladmin, mariadb…): the password glued to -p
  { name: 'mysql -p', binary: '^(?:mysql|mariadb)', arg: '^-p(.+)$' },
  // sshpass -p X, redis-cli -a X
  { name: 'sshpass -p', binary: '^sshpass$', nextArg: '^-p$' },
  { name: 'redis-cli -a', binary: '^redis-cli$', nextArg: '^-a$' },
]

interface CompiledRule {
  arg?: RegExp
  /** `arg` without the `g` and `d` flags: whether an argument has a match at all, without
   * matchAll's iterator and index arrays (most arguments have none). */
  argTest?: RegExp
  nextArg?: RegExp
  binary?: RegExp
}

const ruleSchema = z
  .object({
    name: z.string().min(1),
    arg: z.string().min(1).optional(),
    nextArg: z.string().min(1).optional(),
    binary: z.string().min(1).optional(),
  })
  .strict()
  .refine((r) => r.arg !== undefined || r.nextArg !== undefined, 'needs arg or nextArg')

function compile(rule: RedactRule, where: string, problems: string[]): CompiledRule {
  const out: CompiledRule = {}
  for (const key of ['arg', 'nextArg', 'binary'] as const) {
    const source = rule[key]
    if (source === undefined) continue
    try {
      // `d` gives each group's indices, so only the groups are replaced.
      out[key] = new RegExp(source, key === 'arg' ? 'gid' : 'i')
      if (key === 'arg') out.argTest = new RegExp(source, 'i')
    } catch (err) {
      problems.push(`${where} rule ${rule.name}: ${key}: ${(err as Error).message}`)
    }
  }
  return out
}

/** Reads a rules file: a JSON array of RedactRule. Every problem is reported at once. */
export function readRedactRules(file: string): RedactRule[] {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError([`redactRulesFile: cannot read ${file}: ${(err as Error).message}`])
  }
  if (!Array.isArray(raw))
    throw new ConfigError([`redactRulesFile ${file}: expected a JSON array of rules`])
  const problems: string[] = []
  const rules: RedactRule[] = []
  raw.forEach((item, i) => {
    const parsed = ruleSchema.safeParse(item)
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        problems.push(
          `redactRulesFile ${file}: [${i}]${issue.path.map((p) => `.${String(p)}`).join('')}: ${issue.message}`,
        )
      return
    }
    compile(parsed.data, `redactRulesFile ${file}: [${i}]`, problems)
    rules.push(parsed.data as RedactRule)
  })
  if (problems.length > 0) throw new ConfigError(problems)
  return rules
}

export class Redactor {
  private readonly rules: CompiledRule[]
  /** Arguments changed since start (a metric, never the values). */
  redacted = 0

  constructor(rules: readonly RedactRule[]) {
    const problems: string[] = []
    this.rules = rules.map((r) => compile(r, 'redaction', problems))
    if (problems.length > 0) throw new ConfigError(problems)
  }

  static fromConfig(config: { redactDefaults: boolean; redactRulesFile?: string }): Redactor {
    return new Redactor([
      ...(config.redactDefaults ? DEFAULT_REDACT_RULES : []),
      ...(config.redactRulesFile === undefined ? [] : readRedactRules(config.redactRulesFile)),
    ])
  }

  /** The arguments with every secret replaced; the same array when nothing matched. */
  args(args: readonly string[], filename: string): string[] {
    const binary = basename(filename || args[0] || '')
    const rules = this.rules.filter((r) => r.binary === undefined || r.binary.test(binary))
    let out: string[] | undefined
    let secretNext = false
    for (let i = 0; i < args.length; i++) {
      const original = args[i]!
      let value = original
      if (secretNext) value = REDACTED
      else
        for (const rule of rules)
          if (rule.arg && rule.argTest!.test(value)) value = replaceMatches(rule.arg, value)
      secretNext = rules.some((r) => r.nextArg?.test(original) === true)
      if (value !== original) {
        out ??= args.slice()
        out[i] = value
        this.redacted++
      }
    }
    return out ?? (args as string[])
  }

  /** An exec with its arguments redacted (a copy when anything changed). */
  exec(event: ExecEvent): ExecEvent {
    const args = this.args(event.args, event.filename)
    return args === event.args ? event : { ...event, args }
  }
}

/** Replaces each match's capture groups (or the whole match when it has none). */
function replaceMatches(re: RegExp, value: string): string {
  re.lastIndex = 0
  let out = ''
  let at = 0
  for (const m of value.matchAll(re)) {
    const spans = (m.indices ?? []).slice(1).filter((s): s is [number, number] => s !== undefined)
    const parts = spans.length > 0 ? spans : [m.indices![0]!]
    for (const [start, end] of parts) {
      if (start < at || end === start) continue
      out += value.slice(at, start) + REDACTED
      at = end
    }
  }
  return at === 0 && out === '' ? value : out + value.slice(at)
}
