package daemon

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
)

// liveLog is the root of the daemon's logger, whose level and format a config reload changes
// (--log-level, --log-format). Every part of the daemon holds a logger over it (or over one
// derived with With), so a change reaches them all at once. Enabled is an atomic load and a
// compare: a check logged only at debug level costs nothing more than before.
type liveLog struct {
	w     io.Writer
	level slog.LevelVar
	base  atomic.Pointer[baseHandler]
}

// baseHandler is one format's handler; a new one per format change, so that derived handlers
// see by pointer that theirs is out of date.
type baseHandler struct{ h slog.Handler }

func newLiveLog(w io.Writer, level, format string) *liveLog {
	l := &liveLog{w: w}
	l.set(level, format)
	return l
}

// set applies a level and a format; an unknown level is info, an unknown format text, as the
// flags' enums allow neither.
func (l *liveLog) set(level, format string) {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	l.level.Set(lv)
	if cur := l.base.Load(); cur != nil && format == l.format(cur) {
		return
	}
	opts := &slog.HandlerOptions{Level: &l.level}
	var h slog.Handler = slog.NewTextHandler(l.w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(l.w, opts)
	}
	l.base.Store(&baseHandler{h})
}

func (l *liveLog) format(b *baseHandler) string {
	if _, ok := b.h.(*slog.JSONHandler); ok {
		return "json"
	}
	return "text"
}

func (l *liveLog) logger() *slog.Logger { return slog.New(&liveHandler{root: l}) }

// liveHandler is a slog.Handler over the root's current base handler and the attributes and
// groups added with With/WithGroup, rebuilt once after a format change.
type liveHandler struct {
	root  *liveLog
	ops   []func(slog.Handler) slog.Handler
	built atomic.Pointer[builtHandler]
}

type builtHandler struct {
	base *baseHandler
	h    slog.Handler
}

func (h *liveHandler) current() slog.Handler {
	base := h.root.base.Load()
	if b := h.built.Load(); b != nil && b.base == base {
		return b.h
	}
	out := base.h
	for _, op := range h.ops {
		out = op(out)
	}
	h.built.Store(&builtHandler{base, out})
	return out
}

func (h *liveHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.root.level.Level()
}

func (h *liveHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *liveHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &liveHandler{root: h.root, ops: append(slices.Clip(h.ops), func(b slog.Handler) slog.Handler { return b.WithAttrs(as) })}
}

func (h *liveHandler) WithGroup(name string) slog.Handler {
	return &liveHandler{root: h.root, ops: append(slices.Clip(h.ops), func(b slog.Handler) slog.Handler { return b.WithGroup(name) })}
}
