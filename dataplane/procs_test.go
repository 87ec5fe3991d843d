package dataplane

import (
	"strings"
	"testing"
)

func TestChooseProcs(t *testing.T) {
	for _, tt := range []struct {
		flag      int
		env       string
		available int
		want      Procs
	}{
		{0, "", 1, Procs{N: 1, Available: 1, Source: "auto"}},
		{0, "", 2, Procs{N: 1, Available: 2, Source: "auto"}},
		{0, "", 3, Procs{N: 1, Available: 3, Source: "auto"}},
		{0, "", 8, Procs{N: 4, Available: 8, Source: "auto"}},
		{0, "2", 2, Procs{N: 2, Available: 2, Source: "env"}},
		{3, "2", 2, Procs{N: 3, Available: 2, Source: "flag"}},
	} {
		got, err := ChooseProcs(tt.flag, tt.env, tt.available)
		if err != nil || got != tt.want {
			t.Errorf("ChooseProcs(%d, %q, %d) = %+v, %v; want %+v", tt.flag, tt.env, tt.available, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		flag int
		env  string
		want string
	}{
		{-1, "", "--gomaxprocs -1"},
		{0, "many", `GOMAXPROCS="many"`},
		{0, "0", `GOMAXPROCS="0"`},
	} {
		if _, err := ChooseProcs(tt.flag, tt.env, 2); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ChooseProcs(%d, %q) error %v; want one naming %s", tt.flag, tt.env, err, tt.want)
		}
	}
}

func TestChooseMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		flag int64
		env  string
		want MemoryLimit
	}{
		{0, "", MemoryLimit{MiB: DefaultMemoryLimitMiB, Source: "auto"}},
		{0, "1GiB", MemoryLimit{Source: "env"}},
		{512, "1GiB", MemoryLimit{MiB: 512, Source: "flag"}},
	} {
		got, err := ChooseMemoryLimit(tt.flag, tt.env, DefaultMemoryLimitMiB)
		if err != nil || got != tt.want {
			t.Errorf("ChooseMemoryLimit(%d, %q) = %+v, %v; want %+v", tt.flag, tt.env, got, err, tt.want)
		}
	}
	for _, f := range []int64{-1, 10} {
		if _, err := ChooseMemoryLimit(f, "", DefaultMemoryLimitMiB); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
			t.Errorf("ChooseMemoryLimit(%d) error %v; want one naming --memory-limit", f, err)
		}
	}
}
