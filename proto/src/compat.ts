// Schema evolution check: the current ebbflow.v1 descriptors against the last released ones
// (proto/released/ebbflow.v1.json). Rules in proto/README.md.
import protobuf from 'protobufjs'
import { loadSchemaRoot } from './reflect.ts'

export interface FieldSnapshot {
  id: number
  type: string
  /** 'repeated', 'map<keyType>', 'optional' (explicit presence) or 'singular'. */
  label: string
}

export interface MessageSnapshot {
  fields: Record<string, FieldSnapshot>
  reserved: (number | [number, number] | string)[]
}

export interface EnumSnapshot {
  values: Record<string, number>
  reserved: (number | [number, number] | string)[]
}

export interface DescriptorSnapshot {
  package: string
  messages: Record<string, MessageSnapshot>
  enums: Record<string, EnumSnapshot>
}

const PACKAGE = 'ebbflow.v1'

function label(field: protobuf.Field): string {
  if (field instanceof protobuf.MapField) return `map<${field.keyType}>`
  if (field.repeated) return 'repeated'
  // proto3 `optional` is a synthetic oneof of one field.
  if (field.partOf?.name === `_${field.name}`) return 'optional'
  return 'singular'
}

function reserved(r: (number[] | string)[] | undefined): (number | [number, number] | string)[] {
  return (r ?? []).map((x) =>
    typeof x === 'string' ? x : x[0] === x[1] ? (x[0] as number) : [x[0] as number, x[1] as number],
  )
}

/** The descriptors of ebbflow.v1 as plain JSON (names are fully qualified below the package). */
export function descriptorSnapshot(root: protobuf.Root = loadSchemaRoot()): DescriptorSnapshot {
  const snap: DescriptorSnapshot = { package: PACKAGE, messages: {}, enums: {} }
  const visit = (ns: protobuf.NamespaceBase, prefix: string) => {
    for (const obj of ns.nestedArray) {
      const name = prefix ? `${prefix}.${obj.name}` : obj.name
      if (obj instanceof protobuf.Type) {
        const fields: Record<string, FieldSnapshot> = {}
        for (const f of obj.fieldsArray) {
          f.resolve()
          fields[f.name] = { id: f.id, type: f.type, label: label(f) }
        }
        snap.messages[name] = { fields, reserved: reserved(obj.reserved) }
        visit(obj, name)
      } else if (obj instanceof protobuf.Enum) {
        snap.enums[name] = { values: { ...obj.values }, reserved: reserved(obj.reserved) }
      }
    }
  }
  visit(root.lookup(PACKAGE) as protobuf.Namespace, '')
  return snap
}

function isReserved(list: (number | [number, number] | string)[], id: number, name: string) {
  const byId = list.some((r) =>
    typeof r === 'number' ? r === id : Array.isArray(r) ? id >= r[0] && id <= r[1] : false,
  )
  return byId && list.includes(name)
}

/**
 * Every way `current` breaks readers or writers of `released`: a field's number, type or
 * label changed; a field (or enum value) removed without reserving both its number and its
 * name; a number reused; a message or enum removed. Empty when compatible.
 */
export function compatibilityProblems(
  released: DescriptorSnapshot,
  current: DescriptorSnapshot,
): string[] {
  const problems: string[] = []
  for (const [msgName, old] of Object.entries(released.messages)) {
    const now = current.messages[msgName]
    if (!now) {
      problems.push(`message ${msgName} was removed`)
      continue
    }
    const byId = new Map(Object.entries(now.fields).map(([n, f]) => [f.id, n]))
    for (const [fieldName, f] of Object.entries(old.fields)) {
      const cur = now.fields[fieldName]
      if (!cur) {
        const reuser = byId.get(f.id)
        if (reuser) problems.push(`${msgName}.${fieldName}: number ${f.id} reused by ${reuser}`)
        else if (!isReserved(now.reserved, f.id, fieldName))
          problems.push(
            `${msgName}.${fieldName} (${f.id}) was removed without \`reserved ${f.id}; reserved "${fieldName}";\``,
          )
        continue
      }
      if (cur.id !== f.id) problems.push(`${msgName}.${fieldName}: number ${f.id} → ${cur.id}`)
      if (cur.type !== f.type)
        problems.push(`${msgName}.${fieldName}: type ${f.type} → ${cur.type}`)
      if (cur.label !== f.label)
        problems.push(`${msgName}.${fieldName}: label ${f.label} → ${cur.label}`)
    }
    for (const r of old.reserved)
      if (!now.reserved.some((x) => JSON.stringify(x) === JSON.stringify(r)))
        problems.push(`${msgName}: reserved ${JSON.stringify(r)} was dropped`)
  }
  for (const [enumName, old] of Object.entries(released.enums)) {
    const now = current.enums[enumName]
    if (!now) {
      problems.push(`enum ${enumName} was removed`)
      continue
    }
    for (const [valueName, n] of Object.entries(old.values)) {
      const cur = now.values[valueName]
      if (cur === undefined) {
        if (!isReserved(now.reserved, n, valueName))
          problems.push(`${enumName}.${valueName} (${n}) was removed without reserving it`)
      } else if (cur !== n) problems.push(`${enumName}.${valueName}: ${n} → ${cur}`)
    }
  }
  return problems
}
