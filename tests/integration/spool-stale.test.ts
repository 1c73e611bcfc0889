// Block files left on tmpfs by an ingester killed mid-block: a process opens a chDB store,
// hands it a block (the file is written) and is SIGKILLed before releasing it; the next store
// opened on the same spool folder removes that file, and leaves the files of live processes
// and files that are not block files.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ChdbStore } from '@ebbflow/store'

const root = join(import.meta.dirname, '../..')

describe('stale block files', { timeout: 60_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ebbflow-spool-'))
  const spool = join(tmp, 'spool')
  after(() => rmSync(tmp, { recursive: true, force: true }))

  it('removes the block file of a SIGKILLed process at the next open, and nothing else', async () => {
    // The child writes a block through the store's own path, says so, and waits to be killed.
    const script = `
      import { ChdbStore } from '@ebbflow/store'
      import { mkdirSync } from 'node:fs'
      mkdirSync(${JSON.stringify(spool)}, { recursive: true })
      const store = await ChdbStore.open(${JSON.stringify(join(tmp, 'child-data'))}, { spoolDir: ${JSON.stringify(spool)} })
      await store.batchInput([Buffer.from('not released')])
      process.stdout.write('written\\n')
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d
    })
    const deadline = Date.now() + 40_000
    while (!out.includes('written')) {
      assert.equal(child.exitCode, null, `child exited: ${err}`)
      assert.ok(Date.now() < deadline, `child did not write its block: ${err}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    const killed = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await killed
    const leftByChild = readdirSync(spool)
    assert.deepEqual(leftByChild, [`ebbflow-batch-${child.pid}-1.bin`])

    // A block file of this (live) process, and a file that is no block file.
    const mine = `ebbflow-batch-${process.pid}-999.bin`
    writeFileSync(join(spool, mine), 'live')
    writeFileSync(join(spool, 'ebbflow-batch-notes.txt'), 'other')

    const store = await ChdbStore.open(join(tmp, 'data'), { spoolDir: spool })
    try {
      assert.deepEqual(store.staleBlocksRemoved, leftByChild)
      assert.deepEqual(readdirSync(spool).sort(), ['ebbflow-batch-notes.txt', mine].sort())
      assert.ok(existsSync(join(spool, mine)))
    } finally {
      await store.close()
    }
  })
})
