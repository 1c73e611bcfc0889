// The command-line options, generated from each service's configuration schema and its
// environment names: a field of a schema is a flag (its name in kebab-case unless a table below
// names it otherwise) that reads the same environment variable, with the schema's default in
// its help. A new setting is one schema entry (and its variable); the tables only carry the
// short help line, and a field without one still gets its flag.
import { Option } from 'commander'
import type { z } from 'zod'

/** How one field shows on the command line. */
export interface FieldHelp {
  /** The flag, when not the field's name in kebab-case (`kafkaBrokers` is `--kafka`). */
  flag?: string
  /** Placeholder of the value; absent for a switch. Default: the field's last word. */
  value?: string | false
  description: string
  /** The default as a user reads it, when the schema's computed one would mislead. */
  defaultText?: string
}

/** One service's settings as the CLI offers them. */
export interface SettingsTable {
  // biome-ignore lint/suspicious/noExplicitAny: any zod object schema
  schema: z.ZodObject<any>
  env: Readonly<Record<string, string>>
  help: Readonly<Record<string, FieldHelp>>
  /** Fields this command does not offer (the command decides them itself). */
  omit?: readonly string[]
}

/** One option of a command: the field it sets and the commander option carrying it. */
export interface GeneratedOption {
  field: string
  env: string
  option: Option
}

const kebab = (field: string) => field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

/**
 * The default of one schema field as a user writes it: the default before the field's
 * transforms (`1m`, not 60000), else what the schema makes of an unset value.
 */
// biome-ignore lint/suspicious/noExplicitAny: any zod schema
function schemaDefault(field: z.ZodType<any>): string | undefined {
  const show = (value: unknown) => {
    if (value === undefined || value === '') return 'none'
    if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',')
    return String(value)
  }
  // zod 4's definitions: a pipe (a transform after a default) is read through its input side.
  let def = field._zod.def as { type: string; in?: z.ZodType; defaultValue?: unknown }
  while (def.type === 'pipe' && def.in) def = def.in._zod.def as typeof def
  if (def.type === 'default' || def.type === 'prefault') return show(def.defaultValue)
  const parsed = field.safeParse(undefined)
  return parsed.success ? show(parsed.data) : undefined
}

/**
 * The options of a command, from the tables of the services it starts. A field that several of
 * them share (logLevel, kafkaBrokers…) is one flag set in each; its variable must be the same.
 */
export function optionsOf(
  tables: readonly SettingsTable[],
  overrides: Readonly<Record<string, Partial<FieldHelp>>> = {},
): GeneratedOption[] {
  const byField = new Map<string, GeneratedOption>()
  for (const table of tables) {
    for (const [field, schema] of Object.entries(table.schema.shape)) {
      if (table.omit?.includes(field)) continue
      const env = table.env[field]
      if (env === undefined) throw new Error(`setting ${field} has no environment name`)
      const seen = byField.get(field)
      if (seen) {
        if (seen.env !== env)
          throw new Error(`setting ${field} reads ${seen.env} in one service and ${env} in another`)
        continue
      }
      const help: FieldHelp = {
        description: `(${field})`,
        ...table.help[field],
        ...overrides[field],
      }
      const flag = help.flag ?? kebab(field)
      const value = help.value === false ? '' : ` <${help.value ?? kebab(field).split('-').at(-1)}>`
      const fallback = help.defaultText ?? schemaDefault(schema as z.ZodType<unknown>)
      const option = new Option(
        `--${flag}${value}`,
        `${help.description} (env ${env}; ${fallback === undefined ? 'required' : `default ${fallback}`})`,
      )
      byField.set(field, { field, env, option })
    }
  }
  return [...byField.values()]
}

/** The values given on the command line, by field; a switch given is 'true'. */
export function valuesOf(
  options: readonly GeneratedOption[],
  parsed: Readonly<Record<string, unknown>>,
): Record<string, string> {
  const values: Record<string, string> = {}
  for (const { field, option } of options) {
    const value = parsed[option.attributeName()]
    if (value !== undefined) values[field] = String(value)
  }
  return values
}

/**
 * Sets a field the command defaults differently from its service (`up` serves GraphiQL) when
 * neither its flag nor its variable says otherwise.
 */
export function withDefaults(
  values: Readonly<Record<string, string>>,
  defaults: Readonly<Record<string, string>>,
  options: readonly GeneratedOption[],
  env: NodeJS.ProcessEnv,
): Record<string, string> {
  const out = { ...values }
  for (const [field, value] of Object.entries(defaults)) {
    const name = options.find((o) => o.field === field)?.env
    if (out[field] === undefined && (name === undefined || env[name] === undefined))
      out[field] = value
  }
  return out
}
