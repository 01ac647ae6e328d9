package signin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// ErrNotAdmitted is Admit's refusal of an identity that is none of our users and that no rule
// admits.
var ErrNotAdmitted = errors.New("not a user of rill-authd")

// Admit says which user id is: an existing user with that email. Every sign-in is audited
// (user.signin, with the provider), a refused one too. This is the minimal rule; provisioning
// rules per org (domains, IdP groups) replace it.
func Admit(ctx context.Context, st store.Store, id Identity) (store.User, error) {
	ev := store.AuditEvent{Time: time.Now().UTC(), Actor: "user:" + id.Email, Action: "user.signin",
		Target: "user:" + id.Email, Outcome: "ok", Detail: "provider " + id.Provider}
	u, err := st.GetUserByEmail(ctx, id.Email)
	if errors.Is(err, store.ErrNotFound) {
		ev.Outcome = "denied: no user with this email"
		_ = st.AppendAudit(ctx, ev) // best effort: the refusal stands either way
		return store.User{}, ErrNotAdmitted
	}
	if err != nil {
		return store.User{}, fmt.Errorf("look up %s: %w", id.Email, err)
	}
	if err := st.AppendAudit(ctx, ev); err != nil {
		return store.User{}, fmt.Errorf("write audit event: %w", err)
	}
	return u, nil
}
