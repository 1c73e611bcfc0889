// The GraphQL abuse bench's client in a process of its own (main.ts `--client process`): the
// server's process then carries only what a server carries, and the client's writing of a
// 10 MB body and its garbage are paid by another process, as with a real caller.
// Reads one JSON argument { urls: { [variant]: url }, rounds, token }; sends every shape once
// to each variant per round, the order of the variants alternating round by round; writes
// { times: { "shape|variant": ms[] }, cpuMs: { "shape|variant": total } } to stdout.
import { sendRounds } from '../../tests/fuzz/graphql-abuse-shapes.ts'

const { urls, rounds, token } = JSON.parse(process.argv[2] ?? '{}') as {
  urls: Record<string, string>
  rounds: number
  token: string
}
process.stdout.write(JSON.stringify(await sendRounds(urls, rounds, token)))
