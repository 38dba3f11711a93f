package rack

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func checkJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return fmt.Errorf("job id %q: must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_': %w", id, ErrBadJob)
	}
	return nil
}

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func isDigest(s string) bool { return digestRE.MatchString(s) }

func splitSubject(s string) []string { return strings.Split(s, ".") }

// natsLog sends nats-server's log to slog.
type natsLog struct{ log *slog.Logger }

func (l *natsLog) Noticef(f string, v ...any) { l.log.Info(fmt.Sprintf(f, v...)) }
func (l *natsLog) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l *natsLog) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *natsLog) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *natsLog) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *natsLog) Tracef(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
