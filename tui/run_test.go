package tui

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/provision"
)

func TestRunWithoutTTYFailsAtOnce(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	built := false
	newEngine := func(provision.Prompter, func(provision.Event)) Installer { built = true; return nil }
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), newEngine, Options{In: r, Out: w, Env: []string{"TERM=xterm-256color"}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoTTY) {
			t.Fatalf("Run on a pipe = %v; want ErrNoTTY", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "vcpe install --yes") {
			t.Errorf("the error does not point at --yes: %s", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run hangs without a terminal")
	}
	if built {
		t.Error("the engine was built without a terminal")
	}
}
