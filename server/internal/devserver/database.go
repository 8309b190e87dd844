package devserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/schema/sqlite"
)

// setupDB creates the schema of a new SQLite file and the namespaces.
func setupDB(o Options, cfg *config.Config) error {
	sqlCfg := cfg.Persistence.DataStores[sqliteplugin.PluginName].SQL
	if o.DBFilename != "" {
		if _, err := os.Stat(o.DBFilename); errors.Is(err, os.ErrNotExist) {
			if dir := filepath.Dir(o.DBFilename); dir != "" {
				if _, err := os.Stat(dir); err != nil {
					return &Error{Msg: fmt.Sprintf("--db-filename %s: directory %s does not exist", o.DBFilename, dir)}
				}
			}
			if err := sqlite.SetupSchema(sqlCfg); err != nil {
				return fmt.Errorf("--db-filename %s: create schema: %w", o.DBFilename, err)
			}
		} else if err != nil {
			return &Error{Msg: fmt.Sprintf("--db-filename %s: %v", o.DBFilename, errors.Unwrap(err))}
		}
	}
	var nss []*sqlite.NamespaceConfig
	for _, name := range o.Namespaces {
		ns, err := sqlite.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
		nss = append(nss, ns)
	}
	if o.DBFilename != "" {
		if err := forgetMembers(sqlCfg); err != nil {
			return fmt.Errorf("--db-filename %s: %w", o.DBFilename, err)
		}
	}
	if err := sqlite.CreateNamespaces(sqlCfg, nss...); err != nil {
		if o.DBFilename != "" {
			return fmt.Errorf("--db-filename %s: %w (is it a Temporal SQLite database of this version?)", o.DBFilename, err)
		}
		return err
	}
	return nil
}

// forgetMembers removes the cluster membership rows left by the previous run:
// they name ports picked at random then, and ringpop would try to join them
// before giving up, which delays start-up and shutdown by seconds. The file
// belongs to this one process, so every row is stale.
func forgetMembers(cfg *config.SQL) error {
	db, err := sql.NewSQLDB(sqlplugin.DbKindMain, cfg, resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.PruneClusterMembership(ctx, &sqlplugin.PruneClusterMembershipFilter{PruneRecordsBefore: time.Now().AddDate(100, 0, 0)}); err != nil {
		return fmt.Errorf("clear stale cluster membership: %w", err)
	}
	return nil
}
