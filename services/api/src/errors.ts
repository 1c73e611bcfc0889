// Errors a user is meant to read: a GraphQLError with a stable `code` in its extensions.
// Everything else is masked by the server (see app.ts) and logged instead.
import { GraphQLError } from 'graphql'

export type UserErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN_NAMESPACE'
  | 'BAD_USER_INPUT'
  | 'BAD_CURSOR'
  | 'PAGE_TOO_LARGE'
  | 'RESULT_TOO_LARGE'
  | 'QUERY_TIMEOUT'
  | 'UNAVAILABLE'

export function userError(code: UserErrorCode, message: string, status?: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: status === undefined ? { code } : { code, http: { status } },
  })
}
