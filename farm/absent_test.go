package farm

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/specs"
)

// countingHandler counts the log records at each level whose message has a prefix.
type countingHandler struct {
	mu     sync.Mutex
	prefix string
	n      map[slog.Level]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n[r.Level]++
	}
	return nil
}

func (h *countingHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

// A configured board that is absent is logged as an error once, not at
// every retry, and again when the reason changes.
func TestAbsentBoardLoggedOnceThenOnChange(t *testing.T) {
	logs := &countingHandler{prefix: "board offline", n: map[slog.Level]int{}}
	// Opens are numbered; the reason changes after open number change.
	// Each open past the first round waits until the test has seen it, so
	// when the test sees open n, opens 1..n-1 have returned and logged
	// (the controller opens boards one at a time).
	var n atomic.Int64
	var boards, change int64
	seen := make(chan int64)
	startController(t, testFarm, func(c *Config) {
		boards = int64(len(c.Farm.Boards))
		change = 4 * boards
		c.Logger = slog.New(logs)
		c.ReopenEvery = time.Millisecond
		c.OpenBoard = func(ctx context.Context, b specs.Board) (BoardHandle, error) {
			i := n.Add(1)
			if i > boards { // the first round runs before Ready
				select {
				case seen <- i:
				case <-ctx.Done():
				}
			}
			if i <= change {
				return nil, errors.New("open /dev/ttyUSB9: no such file or directory")
			}
			return nil, errors.New("open /dev/ttyUSB9: permission denied")
		}
	})
	waitFor := func(want int64) {
		for i := range seen {
			if i == want {
				return
			}
		}
	}
	// Seeing open n: opens before n have logged; n itself may be logging,
	// so each check stops at an open that only repeats a logged reason.
	waitFor(change)
	if got := logs.count(slog.LevelError); got != int(boards) {
		t.Errorf("%d error records after 4 rounds of opens of %d absent boards, want %d", got, boards, boards)
	}
	waitFor(change + 2*boards)
	if got := logs.count(slog.LevelError); got != int(2*boards) {
		t.Errorf("%d error records after the reason changed, want %d", got, 2*boards)
	}
}
