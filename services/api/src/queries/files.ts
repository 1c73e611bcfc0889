// File accesses (the file family), and the Landlock ruleset advised from them.

import { userError } from '../errors.ts'
import {
  type Connection,
  isString,
  isUInt,
  type KeyColumn,
  type PageArgs,
  planPage,
  toConnection,
} from '../pagination.ts'
import type { QueryContext } from '../query-context.ts'
import { type EventFilter, filterConditions, num, Params, where } from '../sql.ts'
import { RUNTIME_COMMS, resolveWorkload, workloadConditions } from './syscalls.ts'

export interface FileAccessRow {
  path: string
  access: string
  directory: number | boolean
  total: string | number
  first_seen: string
  last_seen: string
  comms: string[]
  tgids: (string | number)[]
  pods: string[]
  containers: string[]
  /** The calls that made the access (rename: a cross-directory move may need REFER). */
  ops?: string[]
}

/**
 * The sort key of fileAccess pages: most used first, then path and access. bitNot of the total
 * (2^64-1 - total, still a UInt64) turns "total descending" into an ascending column, so one
 * keyset tuple compares the whole key. Totals are sums over the filter's window: a page that
 * follows while accesses are still arriving may show a path again or miss one whose total
 * moved past the cursor; a fixed `to` makes the listing stable.
 */
const FILE_ACCESS_KEY: KeyColumn[] = [
  { sql: 'bitNot(sum(count))', type: 'UInt64', check: isUInt },
  { sql: 'path', type: 'String', check: isString },
  { sql: 'access', type: 'String', check: isString },
]

type FileAccessPageRow = FileAccessRow & { rank: string }

/** Paths a workload touched, one entry per (path, access), most used first, in pages. */
export async function fileAccess(
  ctx: QueryContext,
  filter: EventFilter,
  args: PageArgs,
): Promise<Connection<ReturnType<typeof fileAccessOf>>> {
  const p = new Params()
  const plan = planPage('file', args, FILE_ACCESS_KEY, ctx.limits, p)
  // In HAVING and ORDER BY, `access` is the SELECT's string alias (the enum's name).
  const rows = await ctx.runner.select<FileAccessPageRow>(
    `SELECT path, toString(access) AS access, max(directory) AS directory, sum(count) AS total,
       toString(bitNot(sum(count))) AS rank,
       min(time) AS first_seen, max(time) AS last_seen,
       arraySort(groupUniqArray(comm)) AS comms, arraySort(groupUniqArray(tgid)) AS tgids,
       arraySort(groupUniqArray(pod)) AS pods, arraySort(groupUniqArray(container)) AS containers
     FROM ebbflow.file_accesses ${where(filterConditions(filter, ctx.scope, p))}
     GROUP BY path, access ${plan.condition ? `HAVING ${plan.condition}` : ''}
     ORDER BY ${plan.orderBy} LIMIT ${plan.limit}`,
    p,
  )
  return toConnection('file', plan, args, rows, (r) => [r.rank, r.path, r.access], fileAccessOf)
}

function fileAccessOf(r: FileAccessRow) {
  return {
    path: r.path,
    access: r.access,
    directory: num(r.directory) === 1 || r.directory === true,
    count: num(r.total),
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    processes: r.comms,
    pids: r.tgids.map(num),
    pods: r.pods.filter((x) => x !== ''),
    containers: r.containers.filter((x) => x !== ''),
    ...(r.ops ? { ops: r.ops } : {}),
  }
}

/**
 * Landlock's filesystem rights (include/uapi/linux/landlock.h), in bit order: the ABI that
 * introduced each is the array index past which a kernel would refuse it. ABI 5 handles all
 * of these; ABI 6 and 7 added scopes and logging, not filesystem rights.
 */
export const LANDLOCK_FS_RIGHTS = [
  'EXECUTE',
  'WRITE_FILE',
  'READ_FILE',
  'READ_DIR',
  'REMOVE_DIR',
  'REMOVE_FILE',
  'MAKE_CHAR',
  'MAKE_DIR',
  'MAKE_REG',
  'MAKE_SOCK',
  'MAKE_FIFO',
  'MAKE_BLOCK',
  'MAKE_SYM',
  'REFER', // ABI 2
  'TRUNCATE', // ABI 3
  'IOCTL_DEV', // ABI 5
] as const
export type LandlockRight = (typeof LANDLOCK_FS_RIGHTS)[number]
/** Rights a rule on a file (not a directory) may carry; the kernel refuses the others. */
const FILE_RIGHTS: ReadonlySet<LandlockRight> = new Set([
  'EXECUTE',
  'WRITE_FILE',
  'READ_FILE',
  'TRUNCATE',
  'IOCTL_DEV',
])
const MIN_ABI = 5

export interface ObservedAccess {
  path: string
  access: string
  directory: boolean
  /** The calls behind the access (`rename` among them: REFER may be needed). */
  ops?: readonly string[]
  /** The processes that made it. */
  pids?: readonly number[]
}

export interface LandlockRule {
  path: string
  /** A directory rule covers the whole hierarchy beneath it. */
  directory: boolean
  allowedAccess: LandlockRight[]
  /** `LANDLOCK_ACCESS_FS_*` bits of allowedAccess, for a launcher's landlock_add_rule. */
  allowedAccessMask: number
  /** Observed paths this rule covers. */
  covers: string[]
}

const mask = (rights: Iterable<LandlockRight>) => {
  let m = 0
  for (const r of rights) m |= 1 << LANDLOCK_FS_RIGHTS.indexOf(r)
  return m
}
const parentOf = (path: string) => path.slice(0, Math.max(1, path.lastIndexOf('/')))
const sortRights = (s: Set<LandlockRight>) =>
  LANDLOCK_FS_RIGHTS.filter((r) => s.has(r)) as LandlockRight[]

/** A directory with at least this many files granted alike becomes one hierarchy rule. */
export const COLLAPSE_FILES = 6

/**
 * The smallest set of path-beneath rules covering every observed access, in Landlock's terms.
 *
 * - read → READ_FILE (READ_DIR on a directory); write → WRITE_FILE; truncate (an O_TRUNC
 *   open, creat, truncate, ftruncate) → TRUNCATE; exec → EXECUTE and READ_FILE. A write
 *   without a truncate gets no TRUNCATE: Landlock then refuses O_TRUNC and ftruncate on it.
 * - create and remove are rights of the parent directory (MAKE_REG / MAKE_DIR,
 *   REMOVE_FILE / REMOVE_DIR). A path that was created or removed may not exist when the
 *   launcher opens it to add a rule, so its other rights go to the parent as well.
 * - REFER (a file moved between directories) goes to the parent of every rename's remove or
 *   create whose directory differs from another rename directory of the same process; see
 *   referDirs.
 * - /proc/<pid>/… differs on every run: it is granted as the /proc hierarchy.
 * - COLLAPSE_FILES or more files of one directory become one rule on the directory, and a
 *   rule inside a directory rule that already grants its rights is dropped.
 */
export function buildRuleset(accesses: readonly ObservedAccess[]): LandlockRule[] {
  const rules = new Map<
    string,
    { directory: boolean; rights: Set<LandlockRight>; covers: Set<string> }
  >()
  const grant = (path: string, directory: boolean, rights: LandlockRight[], cover: string) => {
    let r = rules.get(path)
    if (!r) {
      r = { directory, rights: new Set(), covers: new Set() }
      rules.set(path, r)
    }
    r.directory ||= directory
    for (const x of rights) r.rights.add(x)
    r.covers.add(cover)
  }
  const ephemeral = new Set(
    accesses.filter((a) => a.access === 'create' || a.access === 'remove').map((a) => a.path),
  )
  for (const a of accesses) {
    let path = a.path
    let directory = a.directory
    const proc = /^\/proc\/\d+(\/|$)/.exec(path)
    if (proc) {
      path = '/proc'
      directory = true
    }
    const rights: LandlockRight[] = []
    if (a.access === 'read') rights.push(a.directory ? 'READ_DIR' : 'READ_FILE')
    if (a.access === 'write') rights.push('WRITE_FILE')
    if (a.access === 'truncate') rights.push('TRUNCATE')
    if (a.access === 'exec') rights.push('EXECUTE', 'READ_FILE')
    if (a.access === 'create') {
      grant(parentOf(path), true, [a.directory ? 'MAKE_DIR' : 'MAKE_REG'], a.path)
      continue
    }
    if (a.access === 'remove') {
      grant(parentOf(path), true, [a.directory ? 'REMOVE_DIR' : 'REMOVE_FILE'], a.path)
      continue
    }
    if (!proc && ephemeral.has(a.path)) grant(parentOf(path), true, rights, a.path)
    else grant(path, directory, rights, a.path)
  }
  for (const [dir, covers] of referDirs(accesses))
    for (const c of covers) grant(dir, true, ['REFER'], c)
  // Many files of one directory, granted alike: one hierarchy rule.
  const byParent = new Map<string, string[]>()
  for (const [path, r] of rules)
    if (!r.directory) byParent.set(parentOf(path), [...(byParent.get(parentOf(path)) ?? []), path])
  for (const [parent, files] of byParent) {
    if (files.length < COLLAPSE_FILES) continue
    for (const f of files) {
      const r = rules.get(f)!
      grant(parent, true, [...r.rights], f)
      for (const c of r.covers) rules.get(parent)!.covers.add(c)
      rules.delete(f)
    }
  }
  // A rule whose rights an enclosing directory rule already grants adds nothing.
  const paths = [...rules.keys()].sort()
  for (const path of paths) {
    const r = rules.get(path)!
    for (let up = path; up !== '/'; ) {
      up = parentOf(up)
      const outer = rules.get(up)
      if (outer?.directory && [...r.rights].every((x) => outer.rights.has(x))) {
        for (const c of r.covers) outer.covers.add(c)
        rules.delete(path)
        break
      }
    }
  }
  return [...rules.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([path, r]) => {
      // A file rule can only carry file rights; anything else came with a directory.
      const rights = r.directory
        ? r.rights
        : new Set([...r.rights].filter((x) => FILE_RIGHTS.has(x)))
      const allowedAccess = sortRights(rights)
      return {
        path,
        directory: r.directory,
        allowedAccess,
        allowedAccessMask: mask(allowedAccess),
        covers: [...r.covers].sort(),
      }
    })
}

/**
 * Directories that need REFER, each with the renamed paths that make it need it.
 *
 * Landlock refuses (EXDEV) a rename or link whose source and destination directories differ
 * unless both hierarchies grant REFER. A rename is stored as a `remove` of the old name and a
 * `create` of the new one, and the rows reaching here are grouped by (path, access), so the
 * two halves cannot be paired by time. The rule used instead: a rename half gets REFER on its
 * directory when one of its processes renamed something in another directory as well. It
 * never misses a cross-directory move (both halves are rename ops of one process, in two
 * directories); its cost is REFER on a directory where a process renamed within that
 * directory and, separately, elsewhere — REFER alone still needs the MAKE_* / REMOVE_* rights
 * that the halves' own records grant, so nothing else opens up.
 */
function referDirs(accesses: readonly ObservedAccess[]): Map<string, Set<string>> {
  const halves = accesses.filter(
    (a) =>
      (a.access === 'create' || a.access === 'remove') &&
      a.ops?.includes('rename') &&
      !/^\/proc\/\d+(\/|$)/.test(a.path),
  )
  const dirsOf = new Map<number, Set<string>>()
  for (const a of halves)
    for (const pid of a.pids ?? [0]) {
      const s = dirsOf.get(pid) ?? new Set<string>()
      dirsOf.set(pid, s.add(parentOf(a.path)))
    }
  const out = new Map<string, Set<string>>()
  for (const a of halves) {
    const dir = parentOf(a.path)
    if (![...(a.pids ?? [0])].some((pid) => [...dirsOf.get(pid)!].some((d) => d !== dir))) continue
    out.set(dir, (out.get(dir) ?? new Set<string>()).add(a.path))
  }
  return out
}

export interface LandlockArgs {
  namespace: string
  pod?: string | null
  function?: string | null
  container?: string | null
  from?: string | null
  to?: string | null
  includeRuntime?: boolean | null
}

export async function landlockRuleset(ctx: QueryContext, args: LandlockArgs) {
  if (args.pod != null && args.function != null)
    throw userError('BAD_USER_INPUT', 'name a pod or a function, not both')
  const target =
    args.pod == null
      ? undefined
      : await resolveWorkload(ctx, 'file_accesses', {
          namespace: args.namespace,
          pod: args.pod,
          from: args.from,
          to: args.to,
        })
  const seen = args.pod == null || target !== undefined
  const p = new Params()
  const conditions = [
    ...filterConditions(
      { namespace: args.namespace, from: args.from, to: args.to, function: args.function },
      ctx.scope,
      p,
    ),
    ...workloadConditions(target, p),
  ]
  // The runtime's start-up rows have no container name yet: kept with a container filter too.
  if (args.container != null)
    conditions.push(`(container = ${p.add('String', args.container)} OR container = '')`)
  const runtimeComms = p.add('Array(String)', RUNTIME_COMMS)
  const rows = seen
    ? await ctx.runner.select<FileAccessRow & { runtime: number }>(
        `SELECT path, toString(access) AS access, max(directory) AS directory, sum(count) AS total,
           min(time) AS first_seen, max(time) AS last_seen,
           arraySort(groupUniqArray(comm)) AS comms, arraySort(groupUniqArray(tgid)) AS tgids,
           arraySort(groupUniqArray(pod)) AS pods, arraySort(groupUniqArray(container)) AS containers,
           arraySort(groupUniqArray(toString(op))) AS ops,
           (container = '' OR has(${runtimeComms}, comm)) AS runtime
         FROM ebbflow.file_accesses ${where([...conditions, 'NOT path_truncated'])}
         GROUP BY path, access, runtime ORDER BY path, access`,
        p,
      )
    : []
  const workload = rows.filter((r) => num(r.runtime) !== 1).map(fileAccessOf)
  const runtime = rows.filter((r) => num(r.runtime) === 1).map(fileAccessOf)
  const used = args.includeRuntime ? [...workload, ...runtime] : workload
  const rules = buildRuleset(used)
  const handled = [...LANDLOCK_FS_RIGHTS]
  const ruleset = {
    abi: MIN_ABI,
    handledAccessFs: handled,
    handledAccessFsMask: mask(handled),
    rules: rules.map(({ covers: _covers, ...r }) => r),
  }
  const pods = [...new Set(workload.flatMap((a) => a.pods))].sort()
  const who = target
    ? `${target.kind || 'Pod'}/${target.name || target.pod}`
    : args.function
      ? `function ${args.function}`
      : `namespace ${args.namespace}`
  const summary = [
    `Landlock ruleset for ${who} in ${args.namespace} (${workload.length} observed accesses, ` +
      `${runtime.length} of the runtime's start-up ${args.includeRuntime ? 'included' : 'left out'}):`,
    ...rules.map(
      (r) =>
        `  ${r.directory ? 'beneath' : 'file   '} ${r.path}: ${r.allowedAccess.join(', ')}` +
        (r.covers.length > 1 || r.covers[0] !== r.path ? ` (covers ${r.covers.length} paths)` : ''),
    ),
    'Everything else under the handled rights is denied (EACCES).',
  ].join('\n')
  return {
    namespace: args.namespace,
    workloadKind: target ? target.kind || 'Pod' : null,
    workloadName: target ? target.name || target.pod : null,
    function: args.function ?? null,
    pods,
    from: args.from ?? null,
    to: args.to ?? null,
    observed: workload.length > 0,
    accesses: workload,
    runtimeAccesses: runtime,
    rules,
    ruleset,
    summary,
  }
}
