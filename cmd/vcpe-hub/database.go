package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/store"
)

// DatabaseEnv names the database when --database is not given; unlike a
// flag it may carry a password (the environment is not in ps).
const DatabaseEnv = "VCPE_HUB_DATABASE"

// databaseOptions are serve's store flags.
type databaseOptions struct {
	url          string
	passwordFile string
}

// openStore opens the store the flags name: nil (the controller opens
// SQLite in its state directory) unless --database or VCPE_HUB_DATABASE
// names a PostgreSQL database.
func (o databaseOptions) openStore(ctx context.Context) (controller.Store, error) {
	u := o.url
	if u != "" && store.URLHasPassword(u) {
		return nil, cli.Usagef("--database: the URL carries a password, which would show in ps: pass it in %s, PGPASSWORD, a pgpass file (PGPASSFILE) or --database-password-file", DatabaseEnv)
	}
	if u == "" {
		u = os.Getenv(DatabaseEnv)
	}
	if u == "" || u == "sqlite" {
		if o.passwordFile != "" {
			return nil, cli.Usagef("--database-password-file is for a PostgreSQL --database")
		}
		return nil, nil
	}
	if !store.IsPostgresURL(u) {
		return nil, cli.Usagef("--database %q: want sqlite (the default, in --state) or postgres://USER@HOST[:PORT]/DB", store.RedactURL(u))
	}
	var pw string
	if o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, cli.Usagef("--database-password-file: %v", err)
		}
		if pw = strings.TrimRight(string(b), "\r\n"); pw == "" {
			return nil, cli.Usagef("--database-password-file %s is empty: put the database password in it", o.passwordFile)
		}
	}
	s, err := store.OpenPostgres(ctx, u, store.PostgresOptions{Password: pw})
	if err != nil {
		return nil, fmt.Errorf("open the controller's database: %w", err)
	}
	return s, nil
}
