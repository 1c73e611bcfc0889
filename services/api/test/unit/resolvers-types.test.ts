// The resolver types are generated from the composed SDL (npm run gen:graphql) and committed:
// an SDL change without a fresh generation fails here, as the layout and proto files do.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const script = join(import.meta.dirname, '../../scripts/gen-graphql.ts')

describe('resolvers-types.generated.ts', { timeout: 60_000 }, () => {
  it('is what GraphQL Code Generator makes of the SDL (npm run gen:graphql)', () => {
    execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' })
  })
})
