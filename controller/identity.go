package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// Settings holding the replicas' shared identity in a shared store.
const (
	metaCA     = "identity/ca"      // CA certificate and key, PEM
	metaHubKey = "identity/hub-key" // the hub's WireGuard private key
)

// shareIdentity makes every replica present a certificate from one CA and
// tell devices one hub key: the first replica to start offers its own (the
// state directory's, made now if missing), the store keeps the first offer,
// and every replica writes what the store holds into its state directory,
// where loadIdentity reads it. A state directory holding another CA is
// refused: devices pinned to it would stop trusting this replica.
//
// The CA key then lives in the database too: protect the database and its
// backups as the state directory.
func (s *Server) shareIdentity(ctx context.Context) error {
	dir := s.opts.StateDir
	caCert, caKey := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	_, statErr := os.Stat(caCert)
	hadCA := statErr == nil
	if _, _, err := loadOrCreateCA(dir, s.now()); err != nil {
		return err
	}
	c, err := os.ReadFile(caCert)
	if err != nil {
		return fmt.Errorf("share the controller CA: %w", err)
	}
	k, err := os.ReadFile(caKey)
	if err != nil {
		return fmt.Errorf("share the controller CA: %w", err)
	}
	mine := string(c) + string(k)
	got, err := s.store.InitMeta(ctx, metaCA, mine)
	if err != nil {
		return fmt.Errorf("share the controller CA: %w", err)
	}
	if got != mine {
		if hadCA {
			return fmt.Errorf("state directory %s holds a CA other than the one the database's replicas share: move %s and %s away (and %s, %s) to take the shared one, or start it with its own database", dir, caCertFile, caKeyFile, serverCertFile, serverKeyFile)
		}
		cert, key, ok := strings.Cut(got, "-----END CERTIFICATE-----\n")
		if !ok {
			return errors.New("share the controller CA: the database holds no certificate in " + metaCA)
		}
		if err := atomicfile.WriteFile(caKey, []byte(key), 0o600); err != nil {
			return fmt.Errorf("share the controller CA: %w", err)
		}
		if err := atomicfile.WriteFile(caCert, []byte(cert+"-----END CERTIFICATE-----\n"), 0o600); err != nil {
			return fmt.Errorf("share the controller CA: %w", err)
		}
		// A server certificate from the CA just replaced is made again.
		_ = os.Remove(filepath.Join(dir, serverCertFile))
	}
	hubPath := filepath.Join(dir, HubKeyFile)
	_, statErr = os.Stat(hubPath)
	hadHub := statErr == nil
	hk, err := loadOrCreateHubKey(hubPath)
	if err != nil {
		return err
	}
	mineHub := hk.String()
	got, err = s.store.InitMeta(ctx, metaHubKey, mineHub)
	if err != nil {
		return fmt.Errorf("share the hub key: %w", err)
	}
	if got != mineHub {
		if hadHub {
			return fmt.Errorf("state directory %s holds a hub key other than the one the database's replicas share: move %s away to take the shared one", dir, HubKeyFile)
		}
		if err := atomicfile.WriteFile(hubPath, []byte(got+"\n"), 0o600); err != nil {
			return fmt.Errorf("share the hub key: %w", err)
		}
	}
	return nil
}
