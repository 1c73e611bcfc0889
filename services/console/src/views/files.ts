// Files: what one workload (namespace + pod, or a function) opened, wrote, executed, created
// and removed over a window, from the file family; and the Landlock ruleset advised from it,
// as the JSON a launcher applies (copyable) and as the API's human summary.
import { gql } from '../api.ts'
import { eventFilter, filterBar, WHERE } from '../controls.ts'
import { fill, h, note } from '../dom.ts'
import { count, dateTime } from '../format.ts'
import { update, window_ } from '../route.ts'

export interface FileAccess {
  path: string
  access: string
  directory: boolean
  count: number
  firstSeen: string
  lastSeen: string
  processes: string[]
  pids: number[]
  pods: string[]
}

interface Advice {
  workloadKind: string | null
  workloadName: string | null
  function: string | null
  observed: boolean
  runtimeAccesses: { path: string }[]
  ruleset: unknown
  summary: string
}

/** Rows per page (the route's `per` overrides it): the most used paths first, More for the rest. */
const PAGE_SIZE = 200
/** The API's largest page (its default maxPageSize). */
const MAX_PAGE_SIZE = 500

const ACCESSES = `query($filter: EventFilter!, $first: Int, $after: String) {
  fileAccess(filter: $filter, first: $first, after: $after) {
    edges { node { path access directory count firstSeen lastSeen processes pids pods } }
    pageInfo { hasNextPage endCursor }
  }
}`

interface AccessPage {
  fileAccess: {
    edges: { node: FileAccess }[]
    pageInfo: { hasNextPage: boolean; endCursor: string | null }
  }
}

const ADVICE = `query($namespace: String!, $pod: String, $function: String, $from: DateTime, $to: DateTime, $includeRuntime: Boolean) {
  landlockRuleset(namespace: $namespace, pod: $pod, function: $function, from: $from, to: $to, includeRuntime: $includeRuntime) {
    workloadKind workloadName function observed runtimeAccesses { path } ruleset summary
  }
}`

/** A copy button: the clipboard API needs a secure context (localhost is one), else select. */
function copyButton(label: string, text: () => string, target: HTMLElement): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'copy' }, label)
  button.addEventListener('click', () => {
    const done = () => {
      button.textContent = 'Copied'
      setTimeout(() => {
        button.textContent = label
      }, 1500)
    }
    const selectIt = () => {
      const range = document.createRange()
      range.selectNodeContents(target)
      const sel = getSelection()
      sel?.removeAllRanges()
      sel?.addRange(range)
      button.textContent = 'Selected: press Ctrl+C'
    }
    if (navigator.clipboard) navigator.clipboard.writeText(text()).then(done, selectIt)
    else selectIt()
  })
  return button
}

function accessRow(a: FileAccess): HTMLElement {
  return h(
    'tr',
    { 'data-path': a.path, 'data-access': a.access },
    h('td', { class: 'mono path' }, a.directory ? `${a.path}/` : a.path),
    h('td', { class: `access access-${a.access}` }, a.access),
    h('td', { class: 'num' }, count(a.count)),
    h('td', { class: 'time' }, dateTime(a.firstSeen)),
    h('td', { class: 'time' }, dateTime(a.lastSeen)),
    h('td', { class: 'mono', title: `pids ${a.pids.join(', ')}` }, a.processes.join(', ')),
  )
}

function accessTable(tbody: HTMLElement): HTMLElement {
  return h(
    'table',
    { class: 'files' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Path'),
        h('th', {}, 'Access'),
        h('th', {}, 'Count'),
        h('th', {}, 'First seen'),
        h('th', {}, 'Last seen'),
        h('th', {}, 'Processes'),
      ),
    ),
    tbody,
  )
}

export function filesView(root: HTMLElement, params: URLSearchParams): () => void {
  const window = window_(params)
  const ns = params.get('ns') ?? ''
  const pod = params.get('pod') ?? ''
  const fn = params.get('fn') ?? ''
  const runtime = params.get('runtime') === '1'
  const runtimeBox = h('input', { type: 'checkbox', name: 'runtime', value: '1', checked: runtime })
  // An unchecked box is absent from the form's data: the change itself writes the URL.
  runtimeBox.addEventListener('change', () => update({ runtime: runtimeBox.checked ? '1' : null }))
  const accessesBody = h('div', { class: 'accesses' }, note('Loading file accesses…'))
  const rulesetBody = h('div', { class: 'ruleset' })
  fill(
    root,
    h('h1', {}, 'Files'),
    filterBar(params, [...WHERE, { key: 'fn', label: 'Function', placeholder: 'any' }], {
      extra: [h('label', {}, runtimeBox, 'runtime start-up in the ruleset')],
    }),
    h('h2', {}, 'Landlock ruleset'),
    rulesetBody,
    h('h2', {}, 'File accesses'),
    accessesBody,
  )
  const abort = new AbortController()
  const filter: Record<string, string> = eventFilter(params, window)
  if (fn) filter.function = fn

  const per = Number(params.get('per'))
  const first = Number.isInteger(per) && per > 0 ? Math.min(per, MAX_PAGE_SIZE) : PAGE_SIZE
  // Pages follow the API's cursor: More appends the next page under the rows already shown.
  const tbody = h('tbody', {})
  const status = h('span', { class: 'status' })
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'More')
  let shown = 0
  let after: string | null = null
  const loadPage = async () => {
    more.disabled = true
    const d: AccessPage = await gql(ACCESSES, { filter, first, after }, abort.signal)
    const page = d.fileAccess
    for (const e of page.edges) tbody.append(accessRow(e.node))
    shown += page.edges.length
    after = page.pageInfo.endCursor
    more.hidden = !page.pageInfo.hasNextPage
    more.disabled = false
    status.textContent = `${count(shown)} paths and access kinds, most used first${page.pageInfo.hasNextPage ? '; More for the next ones' : ''}`
    if (shown === 0) fill(accessesBody, note('No file accesses in this window.'))
  }
  const failed = (err: unknown) => {
    if (!abort.signal.aborted)
      fill(accessesBody, note(`File accesses: ${(err as Error).message}`, 'error'))
  }
  more.addEventListener('click', () => void loadPage().catch(failed))
  fill(accessesBody, h('div', { class: 'toolbar' }, status), accessTable(tbody), more)
  void loadPage().catch(failed)

  if (!ns || (!pod && !fn)) {
    fill(
      rulesetBody,
      note('Name a namespace and a pod or a function for the ruleset that would confine it.'),
    )
  } else {
    fill(rulesetBody, note('Loading the ruleset…'))
    void (async () => {
      const d: { landlockRuleset: Advice } = await gql(
        ADVICE,
        {
          namespace: ns,
          pod: pod || null,
          function: fn || null,
          from: window.from,
          to: window.to,
          includeRuntime: runtime,
        },
        abort.signal,
      )
      const a = d.landlockRuleset
      const json = JSON.stringify(a.ruleset, null, 2)
      const jsonPre = h('pre', { class: 'mono ruleset-json' }, json)
      const who = a.workloadKind
        ? `${a.workloadKind}/${a.workloadName}`
        : a.function
          ? `function ${a.function}`
          : `${ns}/${pod}`
      fill(
        rulesetBody,
        a.observed
          ? null
          : note(`Nothing of ${who} was observed in this window: the ruleset allows nothing.`),
        h('pre', { class: 'ruleset-summary' }, a.summary),
        h(
          'div',
          { class: 'toolbar' },
          copyButton('Copy JSON', () => json, jsonPre),
          h(
            'span',
            { class: 'status' },
            `for a launcher (landlock_create_ruleset, landlock_add_rule, landlock_restrict_self); ${count(a.runtimeAccesses.length)} paths of the runtime's start-up ${runtime ? 'included' : 'left out'}`,
          ),
        ),
        jsonPre,
      )
    })().catch((err: unknown) => {
      if (!abort.signal.aborted)
        fill(rulesetBody, note(`Landlock ruleset: ${(err as Error).message}`, 'error'))
    })
  }
  return () => abort.abort()
}
