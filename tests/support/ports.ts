// Ports for tests that choose their own: one nothing listens on right now.
import { once } from 'node:events'
import { createServer } from 'node:net'

/** A port free on `host` now, found by letting the kernel pick one and releasing it. */
export async function freePort(host: string): Promise<number> {
  const probe = createServer()
  probe.listen(0, host)
  await once(probe, 'listening')
  const address = probe.address()
  probe.close()
  await once(probe, 'close')
  if (!address || typeof address !== 'object') throw new Error(`no port on ${host}`)
  return address.port
}
