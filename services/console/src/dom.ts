// A few lines of DOM building instead of a framework: the views are tables, forms and three
// library widgets (Cytoscape.js, uPlot, xterm.js) that own their own elements.

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>

/** An element with attributes (`on…` keys become listeners) and children (text is escaped). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function')
      el.addEventListener(key.slice(2), value as EventListener)
    else if (key === 'value' && 'value' in el) (el as HTMLInputElement).value = String(value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

function append(el: Node, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)))
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

/** A message in place of a view's content (loading, nothing found, an error). */
export function note(text: string, kind: 'info' | 'error' = 'info'): HTMLElement {
  return h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)
}
