package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/term"
)

func init() {
	register(command{name: "console", summary: "attach a terminal to a board's console (--hold to type into it)", run: runConsole})
}

// detachKey is Ctrl-], as in telnet and conserver.
const detachKey = 0x1d

func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("console", "hilfarm console --server URL [--hold 30m --reason R] [--log FILE [--for D]] BOARD",
		"Attach this terminal to a board's console: the recent history, then live.\n"+
			"Read-only unless you hold the board: --hold leases it to you (role operator;\n"+
			"everyone sees the hold and its reason) and releases it when you detach.\n"+
			"Ctrl-] detaches. With --log, the console is also appended to FILE and the end\n"+
			"of stdin does not detach (for scripts: `hilfarm console --log c.log B </dev/null`);\n"+
			"it runs until --for has passed, or SIGINT/SIGTERM.", stderr)
	cf := addClientFlags(fs)
	hold := fs.Duration("hold", 0, "hold the board for `DURATION` (e.g. 30m) so your keystrokes reach it")
	reason := fs.String("reason", "", "why you hold the board (required with --hold; others see it)")
	logPath := fs.String("log", "", "also append the console to `FILE`; stdin's end does not detach")
	dur := fs.Duration("for", 0, "detach after `DURATION` (e.g. 10m)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("console takes one board name")
	}
	if *hold < 0 {
		return usageError("--hold must be positive")
	}
	if *hold > 0 && *reason == "" {
		return usageError("--hold needs --reason (everyone sees why the board is held)")
	}
	if *dur < 0 {
		return usageError("--for must be positive")
	}
	board := fs.Arg(0)
	c, err := cf.client()
	if err != nil {
		return err
	}
	out := stdout
	if *logPath != "" {
		lf, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return usageError("--log: %v", err)
		}
		defer lf.Close()
		out = io.MultiWriter(stdout, lf)
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	path := "/api/v1/boards/" + url.PathEscape(board)
	if *hold > 0 {
		if err := c.call(ctx, http.MethodPost, path+"/hold", map[string]string{"duration": hold.String(), "reason": *reason}, nil); err != nil {
			return fmt.Errorf("board %s: hold: %w", board, err)
		}
		fmt.Fprintf(stderr, "hilfarm console: you hold %s for %s (%s)\n", board, *hold, *reason)
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := c.call(rctx, http.MethodDelete, path+"/hold", nil, nil); err != nil {
				fmt.Fprintf(stderr, "hilfarm console: board %s: release: %v\n", board, err)
			} else {
				fmt.Fprintf(stderr, "hilfarm console: released %s\n", board)
			}
		}()
	}

	in := io.Reader(os.Stdin)
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return fmt.Errorf("raw mode: %w", err)
		}
		defer term.Restore(int(f.Fd()), old)
	}
	k := newKeys(in)
	k.stayOnEOF = *logPath != ""
	k.plain = *logPath != "" || noColor()
	return c.attach(ctx, board, k, out, stderr)
}

// keys reads the local keyboard in its own goroutine (a read of stdin
// cannot be cancelled) and hands the chunks to whichever connection is
// current; it survives reconnects.
type keys struct {
	ch   chan []byte
	once sync.Once
	in   io.Reader
	// stayOnEOF: the end of in does not detach (console --log in a script).
	stayOnEOF bool
	// plain: markers without colour (NO_COLOR, or a log file).
	plain bool
}

func newKeys(in io.Reader) *keys { return &keys{ch: make(chan []byte), in: in} }

func (k *keys) start() {
	k.once.Do(func() {
		go func() {
			defer close(k.ch)
			buf := make([]byte, 1024)
			for {
				n, err := k.in.Read(buf)
				if n > 0 {
					k.ch <- bytes.Clone(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	})
}

// consoleMsg is a text message of the terminal websocket (farm.ConsoleMarker
// or farm.TerminalMessage).
type consoleMsg struct {
	Type   string `json:"type"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	You    string `json:"you"`
	Holder string `json:"holder"`
	Error  string `json:"error"`
}

// errDetached: the user pressed Ctrl-] or the keyboard closed.
var errDetached = errors.New("detached")

// attach shows the board's terminal websocket on out and sends keystrokes
// from in while the user holds the board. A viewer dropped for being slow
// (1013) reconnects and gets the replay again.
func (c *client) attach(ctx context.Context, board string, in *keys, out, errw io.Writer) error {
	u := *c.base
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.Path += "/api/v1/boards/" + url.PathEscape(board) + "/terminal"
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	note := func(format string, a ...any) { fmt.Fprintf(errw, "\r\n[hilfarm: "+format+"]\r\n", a...) }
	for {
		conn, resp, err := c.dialer.DialContext(ctx, u.String(), h)
		if err != nil {
			if resp != nil {
				defer resp.Body.Close()
				ae := &apiError{Status: resp.StatusCode}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				if json.Unmarshal(body, ae) != nil || ae.Message == "" {
					ae.Message = resp.Status
				}
				return fmt.Errorf("board %s console: %w", board, ae)
			}
			return fmt.Errorf("board %s console: %w", board, err)
		}
		err = c.session(ctx, conn, board, in, out, note)
		var ce *websocket.CloseError
		switch {
		case errors.Is(err, errDetached):
			note("detached from %s", board)
			return nil
		case errors.As(err, &ce) && ce.Code == websocket.CloseTryAgainLater:
			note("fell behind the console; replaying")
			continue
		case errors.Is(err, syscall.ECONNRESET) && ctx.Err() == nil:
			// The server cuts a viewer that accepted nothing for a while
			// (a paused terminal): come back and replay.
			note("the server cut this view (it had stopped reading); replaying")
			continue
		case ctx.Err() != nil:
			return nil
		}
		return fmt.Errorf("board %s console: %w", board, err)
	}
}

// session runs one connection: the reader prints, this goroutine types.
func (c *client) session(ctx context.Context, conn *websocket.Conn, board string, in *keys, out io.Writer, note func(string, ...any)) error {
	var mu sync.Mutex
	you, holder := "", ""
	holding := func() bool { mu.Lock(); defer mu.Unlock(); return you != "" && you == holder }
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	defer func() { conn.Close(); <-readerDone }()
	go func() {
		defer close(readerDone)
		for {
			typ, p, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			if typ == websocket.BinaryMessage {
				if _, err := out.Write(p); err != nil {
					readErr <- err
					return
				}
				continue
			}
			var m consoleMsg
			if json.Unmarshal(p, &m) != nil {
				continue
			}
			switch m.Type {
			case "marker":
				if in.plain {
					fmt.Fprintf(out, "\r\n-- %s %s --\r\n", m.Kind, m.Detail)
				} else {
					fmt.Fprintf(out, "\r\n\x1b[36m-- %s %s --\x1b[0m\r\n", m.Kind, m.Detail)
				}
			case "hello":
				mu.Lock()
				you, holder = m.You, m.Holder
				mu.Unlock()
				if m.Holder != "" && m.Holder == m.You {
					note("connected to %s; you hold it: your keystrokes go to the board; Ctrl-] detaches", board)
				} else if m.Holder != "" {
					note("connected to %s; read-only: held by %s; Ctrl-] detaches", board, m.Holder)
				} else {
					note("connected to %s; read-only (hold it with --hold to type); Ctrl-] detaches", board)
				}
			case "error":
				note("%s", m.Error)
			}
		}
	}()
	in.start()
	keysCh := in.ch
	warned := false
	for {
		select {
		case <-ctx.Done():
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return ctx.Err()
		case err := <-readErr:
			return err
		case p, ok := <-keysCh:
			if !ok {
				if in.stayOnEOF {
					keysCh = nil // keep logging until ctx ends
					continue
				}
				return errDetached
			}
			i := bytes.IndexByte(p, detachKey)
			send := p
			if i >= 0 {
				send = p[:i]
			}
			if len(send) > 0 {
				if holding() {
					_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if err := conn.WriteMessage(websocket.BinaryMessage, send); err != nil {
						return err
					}
				} else if !warned {
					warned = true
					note("read-only: you do not hold %s; keystrokes are not sent (Ctrl-] detaches)", board)
				}
			}
			if i >= 0 {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return errDetached
			}
		}
	}
}
