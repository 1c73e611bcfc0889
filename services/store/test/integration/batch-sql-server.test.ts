// The ClickHouse server route of the ingester, as far as this machine can take it (no server
// runs here): what ClickHouseStore sends for a block is captured by a bare HTTP listener on
// port 0 and compared with what the chDB route runs — the same statement text but for the
// table function that reads the bytes (input() over the body, file() of a tmpfs file), the
// block's bytes as the body, the proto named for the server's format_schema_path, and the
// block's deduplication token. Untested against a real server.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { EVENTS_PROTO, v1Types } from '@ebbflow/proto'
import {
  BATCH_SCHEMA,
  batchStructure,
  fileSource,
  inputSource,
  insertStatement,
  sqlString,
  validationStatement,
} from '../../src/batch-sql.ts'
import { ClickHouseStore } from '../../src/clickhouse-store.ts'

interface Captured {
  params: URLSearchParams
  body: Buffer
}

describe('ClickHouse server route: the statements and bytes it sends', { timeout: 30_000 }, () => {
  let server: Server
  let url: string
  const captured: Captured[] = []
  before(async () => {
    // The statement travels in the URL (the body is the block): ClickHouse takes URLs up to
    // http_max_uri_size (1 MiB), Node's parser only 16 KiB unless told.
    server = createServer({ maxHeaderSize: 1 << 20 }, (req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        captured.push({
          params: new URL(req.url ?? '/', 'http://x').searchParams,
          body: Buffer.concat(chunks),
        })
        res.writeHead(200, { 'Content-Type': 'text/plain' })
        res.end('')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  it('sends the chDB statement over input(), the block as the body, with token and schema', async () => {
    const records = [
      v1Types.EventBatch.encodeDelimited({
        node: 'n',
        batchId: 'a',
        exec: [{ filename: '/bin/a' }],
      }).finish(),
      v1Types.EventBatch.encodeDelimited({
        node: 'n',
        batchId: 'b',
        exec: [{ filename: '/bin/b' }],
      }).finish(),
    ]
    const body = Buffer.concat(records)
    const store = new ClickHouseStore({ url })
    try {
      const input = await store.batchInput(records)
      await input.insert((s) => insertStatement('process_events', s), {
        dedupToken: 'blk:process_events',
      })
      await input.query(validationStatement)
      await input.release()
    } finally {
      await store.close()
    }
    const [insert, check] = captured
    assert.ok(insert && check, `captured ${captured.length} requests`)
    const path = '/dev/shm/block.bin'
    const chdbText = insertStatement('process_events', fileSource(path))
    const fileCall = `file(${sqlString(path)}, 'Protobuf', `
    // The chDB text with its table function swapped for input() is what the server got.
    const asServer = chdbText.replaceAll(
      `${fileCall}${sqlString(batchStructure(['exec']))})`,
      `input(${sqlString(batchStructure(['exec']))})`,
    )
    // Every family of the table read the bytes (exec, exit, fork).
    assert.equal(chdbText.split(fileCall).length - 1, 3)
    const sentInsert = insert.params.get('query')!
    assert.equal(sentInsert, `${insertStatement('process_events', inputSource)} FORMAT Protobuf`)
    assert.ok(
      sentInsert.startsWith(asServer.slice(0, asServer.indexOf(' FROM '))),
      'the same columns and expressions as chDB runs',
    )
    assert.deepEqual(insert.body, body, 'the block as sent, byte for byte')
    assert.equal(insert.params.get('format_schema'), BATCH_SCHEMA)
    assert.equal(insert.params.get('insert_deduplication_token'), 'blk:process_events')
    const sentCheck = check.params.get('query')!
    assert.ok(
      sentCheck.endsWith(`, * FROM (${validationStatement(inputSource)}) FORMAT Protobuf`),
      sentCheck.slice(0, 200),
    )
    assert.match(sentCheck, /^INSERT INTO ebbflow\.ingest_problems /)
    assert.deepEqual(check.body, body)
  })

  it('ships the proto to Kubernetes byte for byte (the generated ConfigMap is current)', async () => {
    const { PROTO_CONFIGMAP, protoConfigMapYaml } = await import(
      '../../../../infra/clickhouse/proto-configmap.ts'
    )
    assert.equal(readFileSync(PROTO_CONFIGMAP, 'utf8'), protoConfigMapYaml())
    const { parse } = await import('yaml')
    const map = parse(readFileSync(PROTO_CONFIGMAP, 'utf8')) as { data: Record<string, string> }
    assert.equal(map.data['events.proto'], readFileSync(EVENTS_PROTO, 'utf8'))
  })
})
