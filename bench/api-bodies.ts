// RSS of `ebbflow api` while 8 clients send 20 MB bodies at once: with the body limit (1 MiB
// default) and with it raised to 256 MiB, which is how the API behaved before it had one.
// Prints one JSON report.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const cli = join(import.meta.dirname, '../services/cli/src/main.ts')
const MB = Buffer.alloc(1024 * 1024, 0x20)

function post(port: number, megabytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/graphql',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': String(megabytes * MB.length),
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? -1))
      },
    )
    req.on('error', () => resolve(-1))
    let sent = 0
    const pump = () => {
      while (sent < megabytes) {
        sent++
        if (!req.write(MB)) return void req.once('drain', pump)
      }
      req.end()
    }
    pump()
  })
}

async function run(maxBodyBytes: string | undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'ebbflow-bench-bodies-'))
  const args = [cli, 'api', '--open', 'true', '--port', '0', '--data-dir', dir]
  if (maxBodyBytes) args.push('--max-body-bytes', maxBodyBytes)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (d) => {
      out += d
    })
  const deadline = Date.now() + 60_000
  let url: string | undefined
  while (url === undefined && Date.now() < deadline) {
    url = /"url":"(http:[^"]+)"/.exec(out)?.[1]
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!url) {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`api did not start: ${out}`)
  }
  const port = Number(new URL(url).port)
  const rss = () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024
  const before = rss()
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, rss())
  }, 20)
  const started = performance.now()
  const statuses = await Promise.all(Array.from({ length: 8 }, () => post(port, 20)))
  const ms = performance.now() - started
  clearInterval(timer)
  await new Promise((r) => setTimeout(r, 2000))
  const settled = rss()
  child.kill('SIGTERM')
  await once(child, 'exit')
  rmSync(dir, { recursive: true, force: true })
  return {
    maxBodyBytes: maxBodyBytes ?? 'default (1 MiB)',
    statuses,
    ms: Math.round(ms),
    rssMiB: { before: Math.round(before), peak: Math.round(peak), after2s: Math.round(settled) },
  }
}

const report = {
  bench: 'api-bodies',
  limited: await run(undefined),
  unlimited: await run(String(256 * 1024 * 1024)),
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
