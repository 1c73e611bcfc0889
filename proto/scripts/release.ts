// `node proto/scripts/release.ts`: records the current descriptors as the last released ones
// (proto/released/ebbflow.v1.json). Run it when a release ships, never to silence the
// compatibility test.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { descriptorSnapshot } from '../src/compat.ts'

const file = join(import.meta.dirname, '../released/ebbflow.v1.json')
writeFileSync(file, `${JSON.stringify(descriptorSnapshot(), null, 2)}\n`)
process.stdout.write(`wrote ${file}\n`)
