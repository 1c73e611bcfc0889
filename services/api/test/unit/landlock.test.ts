// The ruleset builder: each observed access becomes the Landlock rights the kernel checks for
// it, on the path it checks them on. Expectations follow Landlock's documented semantics
// (Documentation/userspace-api/landlock.rst), not the builder's output.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildRuleset, COLLAPSE_FILES, type ObservedAccess } from '../../src/queries/files.ts'

const a = (path: string, access: string, directory = false): ObservedAccess => ({
  path,
  access,
  directory,
})
const shown = (accesses: ObservedAccess[]) =>
  buildRuleset(accesses).map(
    (r) => `${r.directory ? 'dir' : 'file'} ${r.path}: ${r.allowedAccess.join(',')}`,
  )

describe('buildRuleset', () => {
  const cases: [string, ObservedAccess[], string[]][] = [
    ['a read file', [a('/etc/hosts', 'read')], ['file /etc/hosts: READ_FILE']],
    ['a listed directory', [a('/srv/data', 'read', true)], ['dir /srv/data: READ_DIR']],
    [
      'a file written without a truncate gets no TRUNCATE',
      [a('/var/log/app.log', 'write')],
      ['file /var/log/app.log: WRITE_FILE'],
    ],
    [
      'a file truncated (O_TRUNC, creat, truncate, ftruncate) gets TRUNCATE',
      [a('/srv/state.json', 'write'), a('/srv/state.json', 'truncate')],
      ['file /srv/state.json: WRITE_FILE,TRUNCATE'],
    ],
    [
      'an executed file is also read',
      [a('/usr/bin/cat', 'exec')],
      ['file /usr/bin/cat: EXECUTE,READ_FILE'],
    ],
    [
      'a created file: its directory makes and writes files (the name may not exist next time)',
      [
        a('/tmp/out/r.txt', 'create'),
        a('/tmp/out/r.txt', 'write'),
        a('/tmp/out/r.txt', 'truncate'),
      ],
      ['dir /tmp/out: WRITE_FILE,MAKE_REG,TRUNCATE'],
    ],
    [
      'mkdir and rmdir are rights of the parent',
      [a('/w/new', 'create', true), a('/w/new', 'remove', true)],
      ['dir /w: REMOVE_DIR,MAKE_DIR'],
    ],
    [
      'per-process /proc paths become the /proc hierarchy',
      [a('/proc/4242/status', 'read'), a('/proc/17/maps', 'read')],
      ['dir /proc: READ_FILE'],
    ],
    [
      'a file inside a directory rule that grants it is dropped',
      [a('/d/x', 'create'), a('/d/x', 'write'), a('/d/sub/y', 'write')],
      ['dir /d: WRITE_FILE,MAKE_REG'],
    ],
    [
      'a file truncated inside a directory rule without TRUNCATE stays',
      [a('/d/x', 'create'), a('/d/x', 'write'), a('/d/sub/y', 'write'), a('/d/sub/y', 'truncate')],
      ['dir /d: WRITE_FILE,MAKE_REG', 'file /d/sub/y: WRITE_FILE,TRUNCATE'],
    ],
    [
      'a file needing more than the enclosing rule grants stays',
      [a('/d/x', 'create'), a('/d/run', 'exec')],
      ['dir /d: MAKE_REG', 'file /d/run: EXECUTE,READ_FILE'],
    ],
  ]
  for (const [name, accesses, want] of cases)
    it(name, () => assert.deepEqual(shown(accesses), want))

  // rename(2) is stored as a remove of the old name and a create of the new one (op rename).
  const mv = (path: string, access: string, pid: number): ObservedAccess => ({
    path,
    access,
    directory: false,
    ops: ['rename'],
    pids: [pid],
  })
  it('a rename across directories: REFER on both directories (EXDEV without it)', () =>
    assert.deepEqual(shown([mv('/in/a.txt', 'remove', 7), mv('/out/a.txt', 'create', 7)]), [
      'dir /in: REMOVE_FILE,REFER',
      'dir /out: MAKE_REG,REFER',
    ]))
  it('a rename within one directory needs no REFER', () =>
    assert.deepEqual(shown([mv('/w/a.tmp', 'remove', 7), mv('/w/a', 'create', 7)]), [
      'dir /w: REMOVE_FILE,MAKE_REG',
    ]))
  it('renames of two processes, each within its own directory: no REFER', () =>
    assert.deepEqual(
      shown([
        mv('/x/1', 'remove', 7),
        mv('/x/2', 'create', 7),
        mv('/y/1', 'remove', 8),
        mv('/y/2', 'create', 8),
      ]),
      ['dir /x: REMOVE_FILE,MAKE_REG', 'dir /y: REMOVE_FILE,MAKE_REG'],
    ))
  it('unlink and create across directories without a rename: no REFER', () =>
    assert.deepEqual(
      shown([
        { ...mv('/in/a', 'remove', 7), ops: ['unlink'] },
        { ...mv('/out/a', 'create', 7), ops: ['open'] },
      ]),
      ['dir /in: REMOVE_FILE', 'dir /out: MAKE_REG'],
    ))

  it(`${COLLAPSE_FILES} files of one directory become one hierarchy rule`, () => {
    const libs = Array.from({ length: COLLAPSE_FILES }, (_, i) => a(`/usr/lib/l${i}.so`, 'read'))
    const rules = buildRuleset([...libs, a('/etc/passwd', 'read')])
    assert.deepEqual(
      rules.map((r) => `${r.path} ${r.directory}`),
      ['/etc/passwd false', '/usr/lib true'],
    )
    assert.equal(rules[1]!.covers.length, COLLAPSE_FILES)
  })

  it('masks are the LANDLOCK_ACCESS_FS_* bits of the uapi header', () => {
    // EXECUTE 1<<0, WRITE_FILE 1<<1, READ_FILE 1<<2, READ_DIR 1<<3, MAKE_REG 1<<8, TRUNCATE 1<<14
    const [exec] = buildRuleset([a('/bin/x', 'exec')])
    assert.equal(exec!.allowedAccessMask, (1 << 0) | (1 << 2))
    const [dir] = buildRuleset([
      a('/o/f', 'create'),
      a('/o/f', 'write'),
      a('/o/f', 'truncate'),
      a('/o', 'read', true),
    ])
    assert.equal(dir!.allowedAccessMask, (1 << 1) | (1 << 3) | (1 << 8) | (1 << 14))
  })
})
