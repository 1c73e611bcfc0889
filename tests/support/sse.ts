// Reading a GraphQL subscription's server-sent events in tests: the `data:` payload of each
// event, parsed, until enough have arrived (the stream is then cancelled).

/** The JSON `data:` payloads of `res`'s events until `count` arrived, the stream ended or the
 * deadline passed (then it throws, saying how many came). */
export async function readSseData(
  res: Response,
  count: number,
  timeoutMs = 30_000,
): Promise<unknown[]> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const out: unknown[] = []
  let buffer = ''
  const deadline = Date.now() + timeoutMs
  try {
    while (out.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${out.length} of ${count} events`)
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let end = buffer.indexOf('\n\n')
      while (end >= 0) {
        for (const line of buffer.slice(0, end).split('\n'))
          if (line.startsWith('data:')) out.push(JSON.parse(line.slice(5)))
        buffer = buffer.slice(end + 2)
        end = buffer.indexOf('\n\n')
      }
    }
  } finally {
    await reader.cancel()
  }
  return out
}
