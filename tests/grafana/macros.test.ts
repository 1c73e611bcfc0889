// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Grafana's ${variable} syntax, not JavaScript's
// The expansion of tests/support/grafana.ts against the expected strings of the ClickHouse
// plugin's own tests (grafana/clickhouse-datasource: pkg/macros/macros_test.go and
// src/data/CHDatasource.test.ts, Apache-2.0), copied here as they are there.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  applyConditionalAll,
  expandPanelSql,
  interpolateMacros,
  MACROS,
  type MacroContext,
  MacroError,
  replaceVariables,
} from '../support/grafana.ts'

const ctx = (from: string, to: string, intervalMs = 0): MacroContext => ({
  from: new Date(from),
  to: new Date(to),
  intervalMs,
})
const zero = ctx('0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z', 20_000)

describe('plugin macros (macros_test.go)', { timeout: 10_000 }, () => {
  const c = ctx('2014-11-12T11:45:26.371Z', '2015-11-12T11:45:26.371Z')

  it('single macros', () => {
    assert.equal(MACROS.fromTime!(c, []), 'toDateTime(1415792726)')
    assert.equal(MACROS.toTime!(c, []), 'toDateTime(1447328726)')
    assert.equal(MACROS.fromTime_ms!(c, []), 'fromUnixTimestamp64Milli(1415792726371)')
    assert.equal(MACROS.toTime_ms!(c, []), 'fromUnixTimestamp64Milli(1447328726371)')
    assert.equal(
      MACROS.dateFilter!(c, ['dateCol']),
      "dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')",
    )
    assert.equal(
      MACROS.dateTimeFilter!(c, ['dateCol', 'timeCol']),
      "(dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')) AND (timeCol >= toDateTime(1415792726) AND timeCol <= toDateTime(1447328726))",
    )
    assert.equal(
      MACROS.timeInterval!(zero, ['col']),
      'toStartOfInterval(toDateTime(col), INTERVAL 20 second)',
    )
    assert.equal(
      MACROS.timeInterval_ms!(zero, ['col']),
      'toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 millisecond)',
    )
    assert.equal(MACROS.interval_s!(zero, []), '20')
    assert.equal(MACROS.timeFrom!(c, ['ts']), 'ts >= toDateTime(1415792726)')
    assert.equal(MACROS.timeTo!(c, ['ts']), 'ts <= toDateTime(1447328726)')
    assert.equal(
      MACROS.timeGroup!(zero, ['ts', '5m']),
      'toStartOfInterval(toDateTime(ts), INTERVAL 300 second)',
    )
    assert.equal(
      MACROS.timeGroup!(zero, ['ts', '1h']),
      'toStartOfInterval(toDateTime(ts), INTERVAL 3600 second)',
    )
  })

  it('wrong arities and bad durations are errors', () => {
    for (const [name, args] of [
      ['timeFilter', []],
      ['timeFilter_ms', []],
      ['dateFilter', []],
      ['dateTimeFilter', ['d']],
      ['timeInterval', []],
      ['timeInterval_ms', []],
      ['timeFrom', []],
      ['timeTo', []],
      ['timeGroup', ['ts']],
      ['timeGroup', ['ts', 'nope']],
      ['timeGroup', ['ts', 'not-a-duration']],
    ] as const)
      assert.throws(() => MACROS[name]!(zero, [...args]), MacroError, `${name}(${args})`)
  })

  it('TestInterpolate', () => {
    const c2 = ctx('2014-11-12T11:45:26.123Z', '2015-11-12T11:45:26.456Z')
    const cases: [string, string][] = [
      [
        'select * from foo where $__timeFilter(cast(sth as timestamp))',
        'select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)',
      ],
      [
        'select * from foo where $__timeFilter(cast(sth as timestamp) )',
        'select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)',
      ],
      [
        'select * from foo where $__timeFilter_ms(cast(sth as timestamp))',
        'select * from foo where cast(sth as timestamp) >= fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= fromUnixTimestamp64Milli(1447328726456)',
      ],
      [
        'select * from foo where $__timeFilter_ms(cast(sth as timestamp) )',
        'select * from foo where cast(sth as timestamp) >= fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= fromUnixTimestamp64Milli(1447328726456)',
      ],
      [
        'select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100',
        'select * from foo where ( date >= toDateTime(1415792726) and date <= toDateTime(1447328726) ) limit 100',
      ],
      [
        'select * from foo where ( date >= $__fromTime ) and ( date <= $__toTime ) limit 100',
        'select * from foo where ( date >= toDateTime(1415792726) ) and ( date <= toDateTime(1447328726) ) limit 100',
      ],
      [
        'select * from foo where ( date >= $__fromTime_ms and date <= $__toTime_ms ) limit 100',
        'select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) and date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100',
      ],
      [
        'select * from foo where ( date >= $__fromTime_ms ) and ( date <= $__toTime_ms ) limit 100',
        'select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) ) and ( date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100',
      ],
    ]
    for (const [input, output] of cases) assert.equal(interpolateMacros(input, c2), output)
  })

  it('TestInterpolateNestedMacros', () => {
    const c2 = ctx('2014-11-12T11:45:26.123Z', '2015-11-12T11:45:26.456Z', 60_000)
    assert.equal(
      interpolateMacros('SELECT $__timeInterval($__fromTime) AS from_time', c2),
      'SELECT toStartOfInterval(toDateTime(toDateTime(1415792726)), INTERVAL 60 second) AS from_time',
    )
    assert.equal(
      interpolateMacros('SELECT $__timeInterval_ms($__fromTime_ms)', c2),
      'SELECT toStartOfInterval(toDateTime64(fromUnixTimestamp64Milli(1415792726123), 3), INTERVAL 60000 millisecond)',
    )
    assert.equal(
      interpolateMacros(
        'select * from foo where $__timeFilter(coalesce(closed_at, $__toTime))',
        c2,
      ),
      'select * from foo where coalesce(closed_at, toDateTime(1447328726)) >= toDateTime(1415792726) AND coalesce(closed_at, toDateTime(1447328726)) <= toDateTime(1447328726)',
    )
  })

  it('TestInterpolateBackslashEscapedStringLiterals and backtick / dollar-quoted regions', () => {
    const c2 = ctx('2014-11-12T11:45:26.123Z', '2015-11-12T11:45:26.456Z')
    const cases: [string, string][] = [
      [
        "select * from foo where msg = 'it\\'s -- fine' and $__fromTime",
        "select * from foo where msg = 'it\\'s -- fine' and toDateTime(1415792726)",
      ],
      [
        "select * from foo where msg = 'a\\'/*x' and $__toTime",
        "select * from foo where msg = 'a\\'/*x' and toDateTime(1447328726)",
      ],
      [
        "select * from foo where msg = 'it''s' and $__fromTime",
        "select * from foo where msg = 'it''s' and toDateTime(1415792726)",
      ],
      [
        "SELECT `it's` AS x, msg FROM t WHERE msg = 'a--b' AND $__timeFilter(ts)",
        "SELECT `it's` AS x, msg FROM t WHERE msg = 'a--b' AND ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)",
      ],
      [
        'SELECT `a--b`, `c/*d` FROM t WHERE $__fromTime',
        'SELECT `a--b`, `c/*d` FROM t WHERE toDateTime(1415792726)',
      ],
      [
        'SELECT $doc$a--b$doc$ AS x FROM t WHERE $__toTime',
        'SELECT $doc$a--b$doc$ AS x FROM t WHERE toDateTime(1447328726)',
      ],
    ]
    for (const [input, output] of cases) assert.equal(interpolateMacros(input, c2), output)
  })

  it('leaves macros it does not know, and quoted ones, as they are', () => {
    assert.equal(
      interpolateMacros("SELECT '$__fromTime', $__nosuch(x) FROM t", zero),
      "SELECT '$__fromTime', $__nosuch(x) FROM t",
    )
  })
})

describe('template variables (CHDatasource.test.ts)', { timeout: 10_000 }, () => {
  it('$__conditionalAll: 1=1 for All, the condition otherwise', () => {
    const sql =
      'select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);'
    assert.equal(
      applyConditionalAll(sql, { fieldVal: '$__all' }),
      'select stuff from table where 1=1;',
    )
    assert.equal(
      applyConditionalAll(sql, { fieldVal: "'val1', 'val2'" }),
      'select stuff from table where fieldVal in ($fieldVal);',
    )
    assert.equal(
      applyConditionalAll(
        'select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal) and $__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);',
        { fieldVal: "'val1', 'val2'", fieldVal2: '$__all' },
      ),
      'select stuff from table where fieldVal in ($fieldVal) and 1=1;',
    )
    assert.equal(applyConditionalAll('$__conditionalAll(foo, $fieldVal)', { fieldVal: '' }), '1=1')
    assert.equal(
      applyConditionalAll('$__conditionalAll(foo, $fieldVal)', { fieldVal: ['$__all'] }),
      '1=1',
    )
  })

  it('multi-value variables become quoted lists; formats as Grafana writes them', () => {
    const vars = { ns: ['shop', 'bank'], one: 'x', s: "it's" }
    assert.equal(replaceVariables('ns IN ($ns)', vars), "ns IN ('shop','bank')")
    assert.equal(replaceVariables('ns IN (${ns})', vars), "ns IN ('shop','bank')")
    assert.equal(replaceVariables('ns IN ([[ns]])', vars), "ns IN ('shop','bank')")
    assert.equal(replaceVariables('a = $one', vars), 'a = x')
    assert.equal(replaceVariables('${ns:csv}', vars), 'shop,bank')
    assert.equal(replaceVariables('${s:sqlstring}', vars), "'it''s'")
    assert.equal(replaceVariables('${s:singlequote}', vars), "'it\\'s'")
    assert.equal(
      replaceVariables('ns IN ($ns)', { ns: ['$__all'] }, { ns: ['a', 'b', 'c'] }),
      "ns IN ('a','b','c')",
    )
    assert.equal(
      replaceVariables('$__timeFilter(t) AND $other', vars),
      '$__timeFilter(t) AND $other',
    )
  })

  it('a panel: conditionalAll, then variables, then macros', () => {
    const sql = expandPanelSql({
      rawSql:
        'SELECT $__timeInterval(time) AS t FROM x WHERE $__timeFilter(time) AND $__conditionalAll(namespace IN ($namespace), $namespace) AND $__conditionalAll(pod IN ($pod), $pod)',
      vars: { namespace: ['shop', 'bank'], pod: ['$__all'] },
      ctx: ctx('2014-11-12T11:45:26.371Z', '2015-11-12T11:45:26.371Z', 30_000),
    })
    assert.equal(
      sql,
      "SELECT toStartOfInterval(toDateTime(time), INTERVAL 30 second) AS t FROM x WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726) AND namespace IN ('shop','bank') AND 1=1",
    )
  })
})
