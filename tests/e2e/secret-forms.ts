// The secret forms the redaction test types on real command lines: the words and shapes
// users type secrets in, each with `\0` where the secret goes.

export interface Form {
  binary: string
  /** Arguments with `\0` where the secret goes. */
  args: string[]
  /** The output is the input with the secret replaced by REDACTED, exactly. */
  exact: boolean
}

/** The secret forms, built from the words and shapes a user types (about 300). */
export function secretForms(): Form[] {
  const forms: Form[] = []
  const add = (args: string[], binary = 'tool', exact = true) => forms.push({ binary, args, exact })
  const words = [
    'password',
    'passwd',
    'pass',
    'pwd',
    'token',
    'secret',
    'api-key',
    'apikey',
    'api_key',
    'access-key',
    'client-secret',
    'auth-token',
    'db-password',
    'admin-password',
    'private-key',
    'credentials',
    'session-key',
    'passphrase',
    'signature',
    'secret-key',
    'access-token',
    'AUTH',
  ]
  for (const w of words) {
    add([`--${w}=\0`])
    add([`-${w}=\0`])
    add([`--${w}`, '\0'])
    add([`--${w.toUpperCase()}=\0`])
    add([`--my-${w}:\0`])
  }
  const envNames = [
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'DB_PASSWORD',
    'GITHUB_TOKEN',
    'MY_SECRET',
    'SECRET',
    'API_KEY',
    'STRIPE_SECRET_KEY',
    'PGPASSWORD',
    'MYSQL_PWD',
    'NPM_TOKEN',
    'SLACK_BOT_TOKEN',
    'REDIS_PASS',
    'APP_CLIENT_SECRET',
    'OAUTH_CREDENTIALS',
    'X_AUTH',
    'docker_password',
    'vault_token',
    'GOOGLE_API_KEY',
    'JWT_SECRET',
  ]
  for (const n of envNames) {
    add([`${n}=\0`])
    add(['run', `${n}=\0`, 'cmd'], 'env')
    add(['-e', `${n}=\0`], 'docker')
  }
  const headers = [
    'Authorization: Bearer \0',
    'authorization:bearer \0',
    'Authorization: Basic \0',
    'Authorization: token \0',
    'Proxy-Authorization: Basic \0',
    'X-Api-Key: \0',
    'X-Auth-Token: \0',
    'AUTHORIZATION: Digest \0',
    'Authorization: \0',
    'x-vault-token: \0',
  ]
  for (const h of headers) {
    add(['-H', h], 'curl')
    add([`--header=${h}`], 'curl')
    add(['-s', '--header', h, 'https://example.org/'], 'wget')
  }
  for (const b of ['Bearer \0', 'bearer \0', 'BEARER \0']) add(['-H', b])
  const schemes = [
    'https',
    'http',
    'postgres',
    'postgresql',
    'mysql',
    'redis',
    'amqp',
    'mongodb',
    'mongodb+srv',
    'ftp',
    'git+https',
    'sftp',
  ]
  for (const s of schemes) {
    add([`${s}://alice:\0@db.example:5432/x`])
    add([`--url=${s}://u:\0@h`])
    add(['clone', `${s}://deploy:\0@h/repo.git`], 'git')
  }
  for (const q of [
    'token',
    'access_token',
    'api_key',
    'sig',
    'password',
    'client_secret',
    'X-Amz-Signature',
    'auth',
  ]) {
    add([`https://h.example/a?x=1&${q}=\0&y=2`])
    add([`https://h.example/a?${q}=\0`])
    add([`jdbc:mysql://h/db;user=u;${q}=\0`])
  }
  for (const f of ['password', 'token', 'client_secret', 'apiKey', 'secretAccessKey', 'auth']) {
    add([`{"${f}":"\0","user":"u"}`])
    add(['-d', `{"user": "u", "${f}": "\0"}`], 'curl')
  }
  for (const kind of ['RSA ', 'EC ', 'OPENSSH ', '', 'ENCRYPTED ', 'DSA ']) {
    add(
      [`-----BEGIN ${kind}PRIVATE KEY-----\nMIIEv\0Q\n-----END ${kind}PRIVATE KEY-----`],
      'tool',
      false,
    )
    add([`--key=-----BEGIN ${kind}PRIVATE KEY-----\n\0`], 'tool', false)
  }
  for (const b of ['mysql', 'mysqldump', 'mysqladmin', 'mariadb']) {
    add(['-u', 'root', '-p\0'], b)
    add(['-uroot', '-p\0', 'db'], b)
    add(['--password=\0'], b)
  }
  add(['-p', '\0', 'ssh', 'host'], 'sshpass')
  add(['-a', '\0', 'ping'], 'redis-cli')
  return forms
}
