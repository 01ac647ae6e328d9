package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
)

// backuper is a store that can write a consistent backup of itself while serving (Badger).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (version uint64, err error)
}

func (a *API) registerRecovery(mux *http.ServeMux) {
	a.mutation(mux, "GET /v1/admin/backup", "admin.backup", a.backup)
	mux.HandleFunc("POST /v1/revoke", a.revokeByHolder)
}

// backup streams a backup of the whole store. It is audited before it starts, so the backup
// holds its own audit event, and a failure part-way cuts the connection so that the client
// sees a broken transfer rather than a short file.
func (a *API) backup(w http.ResponseWriter, r *http.Request, c *caller) error {
	c.aim("store")
	if err := c.superuser(); err != nil {
		return err
	}
	b, ok := a.st.(backuper)
	if !ok {
		return errf(http.StatusNotImplemented, "this store has no online backup; for PostgreSQL use pg_dump")
	}
	if err := a.audit(r.Context(), c, "admin.backup", "store"); err != nil {
		return err
	}
	// A backup may take longer than the server's write timeout allows one response.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	start := time.Now()
	out := &lazyWriter{w: w, name: "rill-authd-" + start.UTC().Format("20060102T150405Z") + ".backup"}
	version, err := b.Backup(r.Context(), out)
	if err != nil {
		// Best effort: the event written before the backup says it started, this one that it
		// did not finish.
		_ = a.st.AppendAudit(context.WithoutCancel(r.Context()), store.AuditEvent{Time: a.now().UTC(), Actor: c.actor,
			Action: "admin.backup", Target: "store", Outcome: "failed: " + err.Error()})
		if !out.started && r.Context().Err() == nil {
			return fmt.Errorf("backup: %w", err)
		}
		a.log.Error("backup failed part-way", "request_id", c.requestID, "actor", c.actor, "bytes", out.n, "err", err)
		panic(http.ErrAbortHandler)
	}
	out.start() // an empty store still answers 200
	a.log.Info("backup sent", "request_id", c.requestID, "actor", c.actor, "bytes", out.n, "version", version,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// lazyWriter sends the response headers with the first bytes of the backup, so an error
// before them can still be answered with a status.
type lazyWriter struct {
	w       http.ResponseWriter
	name    string
	n       int64
	started bool
}

func (l *lazyWriter) start() {
	if l.started {
		return
	}
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+l.name+`"`)
	h.Set("Cache-Control", "no-store")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// revokeByHolder is RFC 7009's revocation endpoint: whoever holds a rill_usr_/rill_svc_ token
// may revoke it with no other credential, so a leaked token found by a secret scanner dies at
// once. The answer is 200 with an empty body whatever the token was (live, unknown, malformed,
// already revoked, a JWT), so it tells nothing about which tokens exist. Only a token whose
// secret matches is revoked: its id with a wrong secret revokes nothing. JWTs cannot be
// revoked one by one; they expire.
func (a *API) revokeByHolder(rw http.ResponseWriter, r *http.Request) {
	const pattern = "POST /v1/revoke"
	w := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
	defer func() { a.metrics.AdminRequest(pattern, w.code) }()
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	tok, err := revocationToken(r)
	if err == nil {
		err = a.revokeHeld(r.Context(), tok, r.Header.Get("X-Request-Id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revocationToken reads the token of a revocation request: RFC 7009's form field, or JSON.
// The URL's query is not read: a token there would end up in access logs.
func revocationToken(r *http.Request) (string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return "", err
			}
			return "", errf(http.StatusBadRequest, "bad form body: %v", err)
		}
		return strings.TrimSpace(r.PostForm.Get("token")), nil
	case "application/json":
		var req struct {
			Token         string `json:"token"`
			TokenTypeHint string `json:"token_type_hint"`
		}
		if err := decode(r, &req); err != nil {
			return "", err
		}
		return strings.TrimSpace(req.Token), nil
	}
	return "", errf(http.StatusUnsupportedMediaType, "send the token as application/x-www-form-urlencoded (token=...) or application/json ({\"token\":...})")
}

// revokeHeld revokes tok if it is a live rill token whose secret matches; anything else is
// not an error. Only a failure of the store is.
func (a *API) revokeHeld(ctx context.Context, tok, requestID string) error {
	if tok == "" || resolver.IsJWT(tok) {
		return nil
	}
	// Resolve checks the secret against the stored hash in constant time, as a check does.
	res, err := a.res.Resolve(ctx, tok)
	if err != nil {
		if resolver.IsAuthError(err) {
			return nil
		}
		return fmt.Errorf("revoke: %w", err)
	}
	p := res.Principal
	// A public URL's token is held by everyone the link was shared with: one of them must not
	// kill it for the others (rillctl public-url delete revokes it).
	if p.Kind != policy.KindUser && p.Kind != policy.KindService {
		return nil
	}
	id := res.TokenID.String()
	if err := a.st.DeleteToken(ctx, res.TokenID); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) {
			return nil // revoked by someone else in between
		}
		return fmt.Errorf("revoke: %w", err)
	}
	a.metrics.TokensRevoked(p.Kind, 1)
	action, target := "token.revoke", "user:"+p.Subject+" token:"+id
	if p.Kind == policy.KindService {
		action, target = "service.token.revoke", "service:"+p.Subject+" token:"+id
		if s, err := a.st.GetService(ctx, p.ID); err == nil {
			target = "service:" + s.Org + "/" + s.Name + " token:" + id
		}
	}
	if err := a.st.AppendAudit(ctx, store.AuditEvent{Time: a.now().UTC(), Actor: "token-holder", Action: action, Target: target,
		Outcome: "ok", Detail: "revoked by its holder (POST /v1/revoke, RFC 7009)"}); err != nil {
		return fmt.Errorf("write audit event: %w", err)
	}
	a.log.Info("token revoked by its holder", "request_id", requestID, "action", action, "target", target)
	return nil
}
