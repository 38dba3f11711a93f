package farm

import (
	"context"
	"log/slog"

	"github.com/hilfarm/hilfarm/fixtures"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// FixtureOpener opens boards with package fixtures (real hardware and
// emulators): the OpenBoard of a production Config.
func FixtureOpener(farm *specs.Farm, runDir string, log *slog.Logger) func(context.Context, specs.Board) (BoardHandle, error) {
	return func(ctx context.Context, b specs.Board) (BoardHandle, error) {
		fb, err := fixtures.OpenBoard(ctx, farm, b.Name, fixtures.Options{Logger: log, RunDir: runDir})
		if err != nil {
			return nil, err
		}
		return fixtureBoard{fb}, nil
	}
}

type fixtureBoard struct{ *fixtures.Board }

func (b fixtureBoard) ConsoleSource() runner.Console { return b.Console() }
