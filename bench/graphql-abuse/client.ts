// The GraphQL abuse bench's client in a process of its own (main.ts `--client process`): the
// server's process then carries only what a server carries, and the client's writing of a
// 10 MB body and its garbage are paid by another process, as with a real caller.
// Reads one JSON argument { urls: { [variant]: url }, rounds, token }; sends every shape once
// to each variant per round, the order of the variants alternating round by round; writes
// { times: { "shape|variant": ms[] }, cpuMs: { "shape|variant": total } } to stdout.
import { SHAPES, timedPost } from '../../tests/fuzz/graphql-abuse-shapes.ts'

const { urls, rounds, token } = JSON.parse(process.argv[2] ?? '{}') as {
  urls: Record<string, string>
  rounds: number
  token: string
}
const variants = Object.keys(urls)
const bodies = SHAPES.map((s) => Buffer.from(s.body()))
const times: Record<string, number[]> = {}
const cpuMs: Record<string, number> = {}
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? variants : [...variants].reverse()
  for (const [i, shape] of SHAPES.entries())
    for (const v of order) {
      const c0 = process.cpuUsage()
      const r = await timedPost(urls[v]!, bodies[i]!, token)
      const c = process.cpuUsage(c0)
      if (r.status !== shape.status) throw new Error(`${v} ${shape.name}: status ${r.status}`)
      const key = `${shape.name}|${v}`
      times[key] = [...(times[key] ?? []), r.ms]
      cpuMs[key] = (cpuMs[key] ?? 0) + (c.user + c.system) / 1000
    }
}
process.stdout.write(JSON.stringify({ times, cpuMs }))
