package main

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// noColor reports whether the user asked for no colour (https://no-color.org):
// NO_COLOR set to anything but the empty string.
func noColor() bool { return os.Getenv("NO_COLOR") != "" }

// logFlags are the logging flags of the long-running commands.
type logFlags struct {
	level, format *string
}

func addLogFlags(fs *flag.FlagSet, defaultLevel string) logFlags {
	return logFlags{
		level: fs.String("log-level", defaultLevel, "log `level`: debug, info, warn, error"),
		format: fs.String("log-format", "auto", "log `format`: text, json, or auto (text; under systemd, "+
			"text without timestamps and with syslog priority prefixes for the journal)"),
	}
}

// underSystemd: the process was started by systemd with its stderr going
// to the journal (systemd sets JOURNAL_STREAM then, and INVOCATION_ID for
// every service).
func underSystemd() bool {
	return os.Getenv("JOURNAL_STREAM") != "" && os.Getenv("INVOCATION_ID") != ""
}

func (f logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return newLoggerFormat(w, *f.level, *f.format)
}

func newLoggerFormat(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if !underSystemd() {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		// The journal stamps each line itself; a "<N>" prefix gives it
		// the syslog priority (SyslogLevelPrefix=yes, the default).
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		return slog.New(slog.NewTextHandler(&journalWriter{w: w}, opts)), nil
	}
	return nil, usageError("--log-format %q: want text, json or auto", format)
}

// journalWriter prefixes each record (one Write of slog's TextHandler,
// starting "level=X") with its syslog priority.
type journalWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *journalWriter) Write(p []byte) (int, error) {
	prio := "<6>" // info
	switch {
	case bytes.HasPrefix(p, []byte("level=DEBUG")):
		prio = "<7>"
	case bytes.HasPrefix(p, []byte("level=WARN")):
		prio = "<4>"
	case bytes.HasPrefix(p, []byte("level=ERROR")):
		prio = "<3>"
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Continuation lines of a multi-line value are quoted by slog, so one
	// record is one line; the prefix goes once.
	if _, err := io.WriteString(j.w, prio+strings.TrimRight(string(p), "\n")+"\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}
