// The statement check and the Native rewrite of the /clickhouse interface, on inputs written
// here byte by byte (the integration test reads real chDB output with clickhouse-go).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseStatement } from '../../src/clickhouse-http.ts'
import { nativeForRevision } from '../../src/native-format.ts'

describe('parseStatement', { timeout: 10_000 }, () => {
  it('finds the first keyword past comments and strips a trailing ; and FORMAT', () => {
    assert.deepEqual(parseStatement('  -- why\n/* x; y */ select 1;  \n'), {
      sql: '  -- why\n/* x; y */ select 1',
      keyword: 'SELECT',
    })
    assert.deepEqual(parseStatement('SELECT 1 FORMAT JSONEachRow'), {
      sql: 'SELECT 1',
      keyword: 'SELECT',
      format: 'JSONEachRow',
    })
    assert.equal(parseStatement('(SELECT 1)').keyword, 'SELECT')
    assert.equal(parseStatement('with 1 as x select x').keyword, 'WITH')
  })

  it('a ; or INTO OUTFILE inside strings, identifiers or comments is not one', () => {
    assert.equal(parseStatement('SELECT \'a;b\', `c;d`, "e;f" -- ;g').keyword, 'SELECT')
    assert.equal(parseStatement("SELECT 'into outfile x', 'it\\'s;'").keyword, 'SELECT')
  })

  it('refuses several statements and INTO OUTFILE, as ClickHouse does', () => {
    assert.throws(() => parseStatement('SELECT 1; SELECT 2'), /Multi-statements are not allowed/)
    assert.throws(() => parseStatement("SELECT 1 INTO  OUTFILE 'x'"), /INTO OUTFILE is not allowed/)
    assert.throws(() => parseStatement("SELECT 'unterminated"), /unterminated/)
  })
})

describe('nativeForRevision', { timeout: 10_000 }, () => {
  // One block: 2 columns (a UInt8, s String), 2 rows.
  const plain = Buffer.from([
    2,
    2,
    1,
    0x61,
    5,
    ...Buffer.from('UInt8'),
    7,
    9,
    1,
    0x73,
    6,
    ...Buffer.from('String'),
    1,
    0x78,
    2,
    0x79,
    0x7a,
  ])
  const blockInfo = [1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0]

  it('leaves the plain form for clients without a protocol version', () => {
    assert.deepEqual(nativeForRevision(plain, 0), plain)
  })

  it('adds BlockInfo, and the custom serialization flag from revision 54454', () => {
    assert.deepEqual(
      Buffer.from(nativeForRevision(plain, 54460)),
      Buffer.from([
        ...blockInfo,
        2,
        2,
        1,
        0x61,
        5,
        ...Buffer.from('UInt8'),
        0,
        7,
        9,
        1,
        0x73,
        6,
        ...Buffer.from('String'),
        0,
        1,
        0x78,
        2,
        0x79,
        0x7a,
      ]),
    )
    assert.deepEqual(
      Buffer.from(nativeForRevision(plain, 54453)),
      Buffer.from([...blockInfo, ...plain]),
    )
  })

  it('refuses a truncated block and a type it cannot measure', () => {
    assert.throws(() => nativeForRevision(plain.subarray(0, plain.length - 1), 54460), /truncated/)
    const odd = Buffer.from([1, 1, 1, 0x61, 7, ...Buffer.from('Dynamic'), 0])
    assert.throws(() => nativeForRevision(odd, 54460), /Dynamic is not supported/)
  })
})
