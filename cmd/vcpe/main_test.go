package main

import "testing"

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"no-such-command"}, {"--no-such-flag"}} {
		if code := run(args); code != 2 {
			t.Errorf("vcpe %v: exit %d; want 2", args, code)
		}
	}
	if code := run([]string{"--version"}); code != 0 {
		t.Errorf("vcpe --version: exit %d; want 0", code)
	}
}
