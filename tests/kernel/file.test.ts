// Real BPF on the real kernel: the file family resolves the paths a workload opens, execs,
// creates and removes (relative names, dirfds, across mounts) to absolute paths in the
// kernel, and deduplicates repeats into counts.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FileEvent } from '@ebbflow/common'
import { isRoot, startCapture } from '../support/capture.ts'
import { createCgroup } from '../support/cgroup.ts'
import { openStormBinary } from '../support/open-storm.ts'

const skip = isRoot() ? false : 'needs root to load BPF programs'
/** The distribution's Python: a version manager's `python3` may be a shell script. */
const PYTHON = '/usr/bin/python3'

// Every call takes a name relative to a directory fd or the working directory: the kernel
// side must resolve them, the script never passes an absolute path.
const WORKLOAD = `
import os, sys
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open('sub/read-me.txt', os.O_RDONLY, dir_fd=d))
os.close(os.open('created.txt', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d))
os.chdir(os.path.join(sys.argv[1], 'sub'))
os.close(os.open('../rw.txt', os.O_RDWR))
os.close(os.open('.', os.O_RDONLY | os.O_DIRECTORY))
os.close(os.open('sub', os.O_PATH, dir_fd=d))
os.mkdir('newdir', dir_fd=d)
os.rename('created.txt', 'renamed.txt', src_dir_fd=d, dst_dir_fd=d)
os.unlink('../renamed.txt')
os.rmdir('newdir', dir_fd=d)
`

describe('file capture', { skip, timeout: 120_000 }, () => {
  let dir: string

  before(() => {
    // realpath: the kernel reports the resolved path, and a temp dir may sit behind a symlink.
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'ebbflow-file-')))
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'sub/read-me.txt'), 'x')
    writeFileSync(join(dir, 'rw.txt'), 'x')
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('resolves relative names and dirfds to absolute paths with their access kinds', async () => {
    const cg = createCgroup('file')
    const { capture, sink } = startCapture({ families: 'file' })
    try {
      const result = await cg.run([PYTHON, '-c', WORKLOAD, dir])
      assert.equal(result.code, 0, result.stderr)
      const mine = () =>
        sink.of('file').filter((e) => e.cgroupId === cg.id && e.path.startsWith(`${dir}/`))
      const want = [
        `open read ${dir}/sub/read-me.txt`,
        `open create ${dir}/created.txt`,
        `open write ${dir}/created.txt`,
        `open read ${dir}/rw.txt`,
        `open write ${dir}/rw.txt`,
        `open read ${dir}/sub dir`,
        `mkdir create ${dir}/newdir dir`,
        `rename remove ${dir}/created.txt`,
        `rename create ${dir}/renamed.txt`,
        `unlink remove ${dir}/renamed.txt`,
        `rmdir remove ${dir}/newdir dir`,
      ]
      const show = (e: FileEvent) => `${e.op} ${e.access} ${e.path}${e.directory ? ' dir' : ''}`
      await sink.waitFor(
        () => want.every((w) => mine().some((e) => show(e) === w)),
        10_000,
        'every access of the workload',
      )
      // Sorted: the order within one call's accesses is the kernel's bit order.
      assert.deepEqual(mine().map(show).sort(), [...want].sort(), 'exactly these, once each')
      for (const e of mine()) {
        assert.equal(e.tgid, result.pid)
        assert.equal(e.comm, basename(PYTHON))
        assert.equal(e.count, 1)
        assert.equal(e.pathTruncated, false)
      }
      // The exec'd interpreter and the dynamic loader the kernel mapped for it.
      const execs = sink
        .of('file')
        .filter((e) => e.cgroupId === cg.id && e.access === 'exec')
        .map((e) => e.path)
      assert.ok(execs.includes(realpathSync(PYTHON)), `execs: ${execs}`)
      assert.ok(execs.includes(realpathSync('/lib64/ld-linux-x86-64.so.2')), `execs: ${execs}`)
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })

  it('truncates: O_TRUNC through open, openat, openat2 and creat, truncate, ftruncate', async () => {
    const names = ['openat.txt', 'open.txt', 'openat2.txt', 'creat.txt', 'path.txt', 'fd.txt']
    const plain = 'plain.txt'
    for (const n of [...names, plain]) writeFileSync(join(dir, n), 'content')
    // One call per file, each under its own name; the failed O_TRUNC open leaves nothing
    // behind for the thread's next open (plain.txt, written without O_TRUNC).
    const script = `
import ctypes, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def p(n): return os.path.join(d, n).encode()
def check(fd):
    if fd < 0: raise OSError(ctypes.get_errno(), 'syscall')
    os.close(fd)
W, T = os.O_WRONLY, os.O_TRUNC
os.close(os.open(p('openat.txt'), W | T))
check(libc.syscall(ctypes.c_long(2), p('open.txt'), ctypes.c_long(W | T)))
how = (ctypes.c_uint64 * 3)(W | T, 0, 0)
check(libc.syscall(ctypes.c_long(437), ctypes.c_long(-100), p('openat2.txt'), ctypes.byref(how), ctypes.c_size_t(24)))
check(libc.syscall(ctypes.c_long(85), p('creat.txt'), ctypes.c_long(0o644)))
os.truncate(p('path.txt'), 1)
fd = os.open(p('fd.txt'), os.O_RDWR)
os.ftruncate(fd, 2)
os.close(fd)
try:
    os.open(p('missing.txt'), W | T)
except FileNotFoundError:
    pass
os.close(os.open(p('${plain}'), W))
`
    const cg = createCgroup('file-trunc')
    const { capture, sink } = startCapture({ families: 'file' })
    try {
      const result = await cg.run([PYTHON, '-c', script, dir])
      assert.equal(result.code, 0, result.stderr)
      const ours = new Set([...names, plain].map((n) => join(dir, n)))
      const mine = () => sink.of('file').filter((e) => e.cgroupId === cg.id && ours.has(e.path))
      const show = (e: FileEvent) => `${e.op} ${e.access} ${basename(e.path)}`
      const want = [
        'open write openat.txt',
        'open truncate openat.txt',
        'open write open.txt',
        'open truncate open.txt',
        'open write openat2.txt',
        'open truncate openat2.txt',
        'open write creat.txt',
        'open truncate creat.txt',
        'truncate truncate path.txt',
        'open read fd.txt',
        'open write fd.txt',
        'truncate truncate fd.txt',
        `open write ${plain}`,
      ]
      await sink.waitFor(
        () => want.every((w) => mine().some((e) => show(e) === w)),
        10_000,
        'every truncate of the workload',
      )
      assert.deepEqual(mine().map(show).sort(), [...want].sort(), 'exactly these, once each')
      for (const e of mine()) assert.equal(e.tgid, result.pid)
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })

  it('a million opens of one file are one record and counts that add up', async () => {
    const cg = createCgroup('file-storm')
    const { capture, sink } = startCapture({ families: 'file' })
    const target = join(dir, 'rw.txt')
    const N = 1_000_000
    try {
      const result = await cg.run([openStormBinary(), target, String(N)])
      assert.equal(result.code, 0, result.stderr)
      const ofTarget = () =>
        sink.of('file').filter((e) => e.cgroupId === cg.id && e.path === target)
      await sink.waitFor(() => ofTarget().length > 0, 10_000, 'the sighting')
      capture.pollCounters()
      const records = ofTarget()
      assert.equal(records.filter((e) => !e.repeat).length, 1, 'one sighting')
      assert.ok(
        records.every((e) => e.access === 'read' && e.tgid === result.pid),
        'read accesses of the workload',
      )
      assert.equal(
        records.reduce((n, e) => n + e.count, 0),
        N,
        'the sighting and the repeats count every open',
      )
      assert.ok(records.length <= 3, `${records.length} records reached JavaScript`)
    } finally {
      await capture.stop()
      await cg.remove()
    }
  })
})
