// chquery runs SQL through github.com/ClickHouse/clickhouse-go/v2 over HTTP, configured as
// Grafana's ClickHouse plugin configures it (protocol http, a URL path, gzip compression,
// database/sql), and prints each result as one JSON line. The tests use it to read the
// embedded store's /clickhouse interface with the very driver Grafana uses.
//
// Input (stdin, JSON): {"addr": "127.0.0.1:4000", "path": "/clickhouse", "user": "default",
// "password": "<token>", "database": "", "queries": [{"id": "…", "sql": "…"}]}
// Output (stdout): one line per query: {"id", "columns": [{"name", "type"}], "rows": [[…]],
// "error"}; the exit code is 0 unless the input cannot be read or the connection not opened.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type query struct {
	ID  string `json:"id"`
	SQL string `json:"sql"`
}

type input struct {
	Addr     string  `json:"addr"`
	Path     string  `json:"path"`
	User     string  `json:"user"`
	Password string  `json:"password"`
	Database string  `json:"database"`
	MaxRows  int     `json:"maxRows"`
	Queries  []query `json:"queries"`
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type output struct {
	ID      string   `json:"id"`
	Columns []column `json:"columns"`
	Rows    [][]any  `json:"rows"`
	Error   string   `json:"error,omitempty"`
}

func run(ctx context.Context, db *sql.DB, q query, maxRows int) output {
	out := output{ID: q.ID, Columns: []column{}, Rows: [][]any{}}
	rows, err := db.QueryContext(ctx, q.SQL)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, t := range types {
		out.Columns = append(out.Columns, column{Name: t.Name(), Type: t.DatabaseTypeName()})
	}
	for rows.Next() {
		values := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			out.Error = err.Error()
			return out
		}
		if len(out.Rows) < maxRows {
			row := make([]any, len(values))
			for i, v := range values {
				switch x := v.(type) {
				case time.Time:
					row[i] = x.UTC().Format(time.RFC3339Nano)
				case nil, string, bool, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32:
					row[i] = x
				default:
					row[i] = fmt.Sprint(x)
				}
			}
			out.Rows = append(out.Rows, row)
		}
	}
	if err := rows.Err(); err != nil {
		out.Error = err.Error()
	}
	return out
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "chquery: bad input:", err)
		os.Exit(2)
	}
	if in.MaxRows <= 0 {
		in.MaxRows = 1000
	}
	// The options Grafana's plugin sets for protocol http (pkg/plugin/driver.go).
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{in.Addr},
		Auth:        clickhouse.Auth{Username: in.User, Password: in.Password, Database: in.Database},
		Protocol:    clickhouse.HTTP,
		HttpUrlPath: in.Path,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP},
		DialTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second,
	})
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		json.NewEncoder(os.Stdout).Encode(output{ID: "ping", Error: err.Error()})
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, q := range in.Queries {
		if err := enc.Encode(run(ctx, db, q, in.MaxRows)); err != nil {
			fmt.Fprintln(os.Stderr, "chquery:", err)
			os.Exit(2)
		}
	}
}
