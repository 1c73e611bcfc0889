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
      'a written file may be truncated (O_TRUNC is not recorded)',
      [a('/var/log/app.log', 'write')],
      ['file /var/log/app.log: WRITE_FILE,TRUNCATE'],
    ],
    [
      'an executed file is also read',
      [a('/usr/bin/cat', 'exec')],
      ['file /usr/bin/cat: EXECUTE,READ_FILE'],
    ],
    [
      'a created file: its directory makes and writes files (the name may not exist next time)',
      [a('/tmp/out/r.txt', 'create'), a('/tmp/out/r.txt', 'write')],
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
      ['dir /d: WRITE_FILE,MAKE_REG,TRUNCATE'],
    ],
    [
      'a file needing more than the enclosing rule grants stays',
      [a('/d/x', 'create'), a('/d/run', 'exec')],
      ['dir /d: MAKE_REG', 'file /d/run: EXECUTE,READ_FILE'],
    ],
  ]
  for (const [name, accesses, want] of cases)
    it(name, () => assert.deepEqual(shown(accesses), want))

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
    const [dir] = buildRuleset([a('/o/f', 'create'), a('/o/f', 'write'), a('/o', 'read', true)])
    assert.equal(dir!.allowedAccessMask, (1 << 1) | (1 << 3) | (1 << 8) | (1 << 14))
  })
})
