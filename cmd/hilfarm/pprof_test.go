package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.0.2.1:6060", "example.com:6060"} {
		err := servePprof(context.Background(), addr, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("servePprof(%q) = %v, want a loopback-only refusal", addr, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := servePprof(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("servePprof(127.0.0.1:0) after cancel = %v, want nil", err)
	}
}
