// infra/k8s/knative: the ingester as a Knative Service fed by a KafkaSource, checked without a
// cluster. The Service against the OpenAPI schema of Knative Serving's own CRD (from the Go
// module knative.dev/serving; scripts/setup.sh fetches it), with fields the schema does not
// know refused, as the API server's pruning would drop them; then what ebbflow relies on: the
// sink's port, no migration per cold start, the KafkaSource's topics and its sink.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { TOPICS } from '@ebbflow/common/wire'
import { Ajv } from 'ajv'
import { parse } from 'yaml'

const root = join(import.meta.dirname, '../..')
const dir = join(root, 'infra/k8s/knative')
const SERVING = 'v0.51.0'
const crdPath = join(root, '.cache', `knative-serving-${SERVING}`, 'service.yaml')

// biome-ignore lint/suspicious/noExplicitAny: manifests and schemas are free-form YAML
type Obj = Record<string, any>

const read = (file: string): Obj => parse(readFileSync(join(dir, file), 'utf8')) as Obj

/** Paths of fields that a structural schema does not declare (and would prune). */
function unknownFields(schema: Obj, value: unknown, path = ''): string[] {
  if (schema['x-kubernetes-preserve-unknown-fields'] === true && !schema.properties) return []
  if (Array.isArray(value))
    return schema.items
      ? value.flatMap((v, i) => unknownFields(schema.items, v, `${path}[${i}]`))
      : []
  if (value === null || typeof value !== 'object') return []
  const out: string[] = []
  for (const [k, v] of Object.entries(value)) {
    const sub =
      schema.properties?.[k] ??
      (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined)
    if (!sub) {
      if (schema.properties && schema['x-kubernetes-preserve-unknown-fields'] !== true)
        out.push(`${path}.${k}`)
      continue
    }
    out.push(...unknownFields(sub, v, `${path}.${k}`))
  }
  return out
}

describe('Knative manifests (infra/k8s/knative)', { timeout: 30_000 }, () => {
  const service = read('service.yaml')
  const source = read('kafkasource.yaml')

  it('the Service is valid against the Knative Serving CRD schema, with no unknown field', {
    skip: existsSync(crdPath)
      ? false
      : `no Knative Service CRD at ${crdPath}: run scripts/setup.sh`,
  }, () => {
    const crd = parse(readFileSync(crdPath, 'utf8')) as Obj
    const version = (crd.spec.versions as Obj[]).find((v) => v.name === 'v1')!
    const schema = version.schema.openAPIV3Schema as Obj
    assert.equal(`${crd.spec.group}/${version.name}`, service.apiVersion)
    assert.equal(crd.spec.names.kind, service.kind)
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(
      schema,
    )
    assert.ok(validate(service), JSON.stringify(validate.errors, null, 2))
    assert.deepEqual(unknownFields(schema, service), [])
    // The walker does find a misspelt field.
    const typo = structuredClone(service)
    typo.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem = true
    assert.deepEqual(unknownFields(schema, typo), [
      '.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem',
    ])
  })

  it('the sink listens where the Service sends, does not migrate per cold start, runs unprivileged', () => {
    const container = service.spec.template.spec.containers[0] as Obj
    const args = container.args as string[]
    assert.equal(args[0], 'ingest')
    const port = Number(args[args.indexOf('--knative-port') + 1])
    assert.deepEqual(container.ports, [{ name: 'http1', containerPort: port }])
    assert.deepEqual(
      (container.env as Obj[]).find((e) => e.name === 'EBBFLOW_MIGRATE'),
      { name: 'EBBFLOW_MIGRATE', value: 'false' },
    )
    assert.equal(container.securityContext.allowPrivilegeEscalation, false)
    assert.equal(container.securityContext.readOnlyRootFilesystem, true)
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL'])
    assert.equal(service.spec.template.spec.securityContext.runAsNonRoot, true)
    assert.ok(container.resources.limits.memory)
  })

  it('the KafkaSource reads every event topic into that Service, retrying 5xx', () => {
    assert.equal(source.apiVersion, 'sources.knative.dev/v1')
    assert.equal(source.kind, 'KafkaSource')
    assert.equal(source.metadata.namespace, service.metadata.namespace)
    assert.deepEqual([...source.spec.topics].sort(), Object.values(TOPICS).sort())
    assert.deepEqual(source.spec.sink.ref, {
      apiVersion: service.apiVersion,
      kind: service.kind,
      name: service.metadata.name,
    })
    assert.ok(source.spec.delivery.retry > 0)
    assert.equal(source.spec.ordering, 'ordered')
  })
})
