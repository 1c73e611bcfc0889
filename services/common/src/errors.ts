// A small error hierarchy: a machine-readable code, whether a retry can help, and the cause.

export interface ErrorOptions {
  cause?: unknown
  retriable?: boolean
}

export class EbbflowError extends Error {
  readonly code: string
  readonly retriable: boolean

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'EbbflowError'
    this.code = code
    this.retriable = options.retriable ?? false
  }
}

/** Configuration that cannot be used; lists every problem at once. */
export class ConfigError extends EbbflowError {
  readonly problems: string[]

  constructor(problems: string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** The kernel or the process lacks what capture needs (privileges, BTF, a hook). */
export class KernelSupportError extends EbbflowError {
  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(code, message, options)
    this.name = 'KernelSupportError'
  }
}
