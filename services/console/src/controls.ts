// The filter bar most views share: a time window and where (namespace, pod), kept in the URL.
import { h } from './dom.ts'
import { RANGES, update } from './route.ts'

export interface FilterField {
  key: string
  label: string
  placeholder?: string
}

export const WHERE: FilterField[] = [
  { key: 'ns', label: 'Namespace', placeholder: 'any' },
  { key: 'pod', label: 'Pod', placeholder: 'any' },
]

/** A form whose submit writes its fields into the URL (and so re-renders the view). */
export function filterBar(
  params: URLSearchParams,
  fields: FilterField[],
  options: { range?: boolean; extra?: HTMLElement[] } = {},
): HTMLFormElement {
  const inputs = fields.map((f) =>
    h(
      'label',
      {},
      f.label,
      h('input', {
        name: f.key,
        value: params.get(f.key) ?? '',
        placeholder: f.placeholder ?? '',
        autocomplete: 'off',
      }),
    ),
  )
  const range = params.get('from')
    ? h(
        'label',
        {},
        'From',
        h('input', { name: 'from', value: params.get('from') ?? '', size: 26 }),
        'to',
        h('input', { name: 'to', value: params.get('to') ?? '', size: 26, placeholder: 'now' }),
      )
    : h(
        'label',
        {},
        'Last',
        h(
          'select',
          { name: 'range' },
          RANGES.map((r) =>
            h('option', { value: r, selected: (params.get('range') ?? '1h') === r }, r),
          ),
        ),
      )
  const form = h(
    'form',
    { class: 'filters' },
    options.range === false ? null : range,
    inputs,
    options.extra ?? [],
    h('button', { type: 'submit' }, 'Apply'),
  )
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const changes: Record<string, string> = {}
    for (const [k, v] of new FormData(form)) changes[k] = String(v).trim()
    update(changes)
  })
  return form
}

/** The API's EventFilter from the URL: window and place. */
export function eventFilter(
  params: URLSearchParams,
  window: { from: string; to: string | null },
): Record<string, string> {
  const f: Record<string, string> = { from: window.from }
  if (window.to) f.to = window.to
  const ns = params.get('ns')
  const pod = params.get('pod')
  const node = params.get('node')
  if (ns) f.namespace = ns
  if (pod) f.pod = pod
  if (node) f.node = node
  return f
}
