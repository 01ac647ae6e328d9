// Package rillimport reads a Rill admin database (PostgreSQL, as rilldata/rill's
// admin/database/postgres migrations shape it) into rill-authd's model, and brings a store in
// line with it: orgs, projects with their prod deployment's runtime, users with every role they
// hold directly or through groups, services with their attributes and roles, and the live user
// and service tokens, under Rill's own UUIDs and secret hashes.
package rillimport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
)

// CreatedBy marks the services, users and tokens an import created, so that a later import
// with --prune revokes only what came from Rill.
const CreatedBy = "rill-import"

// Snapshot is what Read found in a Rill database, already in our model.
type Snapshot struct {
	// Source names the database (host, port, name; never credentials).
	Source string
	Orgs   []store.Org
	// Projects carry their prod deployment's runtime host, instance, audience and branch.
	Projects []store.Project
	Users    []store.User
	Services []store.Service
	Tokens   []store.Token
	// ExpiredTokens counts the user and service tokens left out because they had expired.
	ExpiredTokens int
	// RestrictedBindings counts the users' project roles that Rill limits to some resources
	// (0089.sql's restrict_resources on every binding of the user there), imported so limited.
	RestrictedBindings int
	// PublicURLsUnread says why no public URL was read from a Rill database that has them
	// (its magic_auth_tokens lacks a column the import reads); "" when they were read.
	PublicURLsUnread string
	// Defects are the rows the import cannot take as they are (see Defect): orphans, and org
	// names that collide once lower-cased. Import refuses them all before its first write, or
	// with SkipOrphans leaves the orphans out.
	Defects []Defect
}

// Read reads everything the import needs from the Rill admin database at url, in one
// read-only REPEATABLE READ transaction, so every part comes from one moment.
func Read(ctx context.Context, url string) (*Snapshot, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// Not wrapped: pgx's parse error may quote the URL, password included.
		return nil, errors.New("the Rill database URL does not parse (postgres://user:password@host:port/db?sslmode=...)")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cfg.RuntimeParams["application_name"] = "rill-authd import-rill"
	src := fmt.Sprintf("%s/%s", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), cfg.Database)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Rill database at %s: %w", src, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("the Rill database at %s: begin: %w", src, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // read only: nothing to commit
	r := &reader{tx: tx, snap: &Snapshot{Source: src}, gone: map[string]bool{}}
	if err := r.read(ctx); err != nil {
		return nil, fmt.Errorf("the Rill database at %s: %w", src, err)
	}
	return r.snap, nil
}

type reader struct {
	tx   pgx.Tx
	snap *Snapshot
	cols map[string]bool // "table.column" present

	orgName     map[string]string // org id -> our org name
	projects    map[string]project
	orgRole     map[string]string // role id -> Rill role name
	projectRole map[string]string
	gone        map[string]bool // ids of rows set aside (see setAside)
}

type project struct{ org, name string }

func (r *reader) read(ctx context.Context) error {
	if err := r.checkSchema(ctx); err != nil {
		return err
	}
	steps := []func(context.Context) error{r.roles, r.orgs, r.projectsAndRuntime, r.users, r.services, r.tokens, r.magicTokens}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// query runs sql and calls scan for each row.
func (r *reader) query(ctx context.Context, what, sql string, scan func(pgx.Rows) error) error {
	rows, err := r.tx.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}
