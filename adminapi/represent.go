package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Acting as another user, as Rill's superusers do (rilldata/rill admin/server/auth_tokens.go:
// IssueRepresentativeAuthToken, RevokeAllUserAuthTokens, RevokeRepresentativeAuthTokens; its
// CLI's cli/cmd/sudo/user/assume.go and unassume.go). A superuser gets a short-lived user
// token owned by the user it acts as, recording the superuser as its issuer
// (store.Token.IssuedBy): a check resolves it as that user, with their roles and attributes,
// exactly as the user's own tokens; the superuser's lists show it, and deleting either user
// revokes it.

func (a *API) registerRepresent(mux *http.ServeMux) {
	a.mutation(mux, "POST /v1/tokens/represent", "user.assume", a.represent)
}

// representAliases are the JSON (lowerCamelCase) names of Rill's
// IssueRepresentativeAuthTokenRequest fields.
var representAliases = map[string]string{"ttlMinutes": "ttl_minutes"}

// represent issues a token acting as the user named by email. Only a superuser may, and never
// as another superuser (the token would carry superuser rights its issuer already has, under a
// name that hides who used them) nor as themselves.
func (a *API) represent(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.RepresentRequest
	if err := decodeRill(r.Body, &req, representAliases, "ttl_minutes"); err != nil {
		return err
	}
	email := strings.TrimSpace(req.Email)
	c.aim("user:" + email)
	if !c.isUser() {
		return errf(http.StatusForbidden, "%s is not a user: only a superuser's own token may act as another user", c.actor)
	}
	if !c.p.Superuser {
		return errf(http.StatusForbidden, "only a superuser may act as another user (%s is not one)", c.actor)
	}
	if email == "" {
		return errf(http.StatusBadRequest, "email is required: the user to act as")
	}
	// A superuser's token that is itself assumed (imported from Rill, whose superusers may
	// assume superusers) does not assume again: the chain would hide who acts. Rill's console
	// sends such a caller back to sign in as themselves first (admin/server/auth/handlers.go).
	if err := a.notAssumed(r.Context(), c, "an assumed token cannot assume another user"); err != nil {
		return err
	}
	ttl := req.TTLMinutes
	if ttl == 0 {
		ttl = apiv1.DefaultRepresentMinutes
	}
	if ttl < 0 || ttl > apiv1.MaxRepresentMinutes {
		return errf(http.StatusBadRequest, "ttl_minutes must be from 1 to %d (a day), not %d: an assumed token is short-lived", apiv1.MaxRepresentMinutes, req.TTLMinutes)
	}
	u, err := a.userByEmail(r.Context(), email)
	if err != nil {
		return err
	}
	if u.ID == c.p.ID {
		return errf(http.StatusBadRequest, "you cannot act as yourself (%s)", u.Email)
	}
	if u.Superuser {
		return errf(http.StatusForbidden, "%s is a superuser: a superuser cannot be assumed (act with your own superuser rights instead)", u.Email)
	}
	life := time.Duration(ttl) * time.Minute
	if err := a.checkLifetime(r.Context(), token.User, u.ID, life); err != nil {
		return err
	}
	if err := a.chargeIssue(c); err != nil {
		return err
	}
	tok, err := token.New(token.User)
	if err != nil {
		return err
	}
	// Rill names it "Support for <email>". It does not count against the user's cap on live
	// tokens: the user did not make it and cannot be refused one of their own for it.
	rec := store.NewToken(tok, u.ID, "Support for "+u.Email, c.actor, a.now(), life)
	rec.IssuedBy = c.p.ID
	if err := a.st.CreateToken(r.Context(), rec); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	a.metrics.TokenIssued(policy.KindUser)
	info := tokenInfo(rec)
	info.RepresentingUserID, info.RepresentingEmail, info.IssuedBy = u.ID, u.Email, c.p.Email
	c.named = TokenLabel(rec.Prefix, rec.DisplayName) + "; acting as user:" + u.Email
	return a.answer(w, r, c, "user.assume", "user:"+u.Email+" token:"+rec.ID.String(), http.StatusCreated,
		apiv1.IssuedToken{Token: tok.Encode(), TokenInfo: info}, apiv1.RillRepresented{Token: tok.Encode()})
}

// userTokenInfos lists a user's tokens as the API shows them: their own (which include the
// tokens superusers issued to act as them), then those the user issued to act as others, each
// of these naming both users.
func (a *API) userTokenInfos(ctx context.Context, u store.User) ([]apiv1.TokenInfo, error) {
	own, err := a.st.ListTokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	issued, err := a.st.ListIssuedTokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]apiv1.TokenInfo, 0, len(own)+len(issued))
	for _, t := range own {
		out = append(out, tokenInfo(t))
	}
	if err := a.markBeyond(ctx, token.User, u.ID, out); err != nil {
		return nil, err
	}
	emails := map[string]string{u.ID: u.Email}
	for _, t := range issued {
		out = append(out, tokenInfo(t))
	}
	all := append(own, issued...)
	for i := range out {
		if all[i].IssuedBy == "" {
			continue
		}
		out[i].RepresentingUserID = all[i].OwnerID
		out[i].RepresentingEmail = a.emailOf(ctx, emails, all[i].OwnerID)
		out[i].IssuedBy = a.emailOf(ctx, emails, all[i].IssuedBy)
	}
	return out, nil
}

// emailOf is the email of user id, read once per list (seen); a user gone meanwhile is named
// by id.
func (a *API) emailOf(ctx context.Context, seen map[string]string, id string) string {
	if e, ok := seen[id]; ok {
		return e
	}
	e := "user " + id
	if u, err := a.st.GetUser(ctx, id); err == nil {
		e = u.Email
	}
	seen[id] = e
	return e
}

// userTokens is userTokenInfos' records: the user's own tokens and those they issued.
func (a *API) userTokens(ctx context.Context, owner string) ([]store.Token, error) {
	own, err := a.st.ListTokens(ctx, owner)
	if err != nil {
		return nil, err
	}
	issued, err := a.st.ListIssuedTokens(ctx, owner)
	if err != nil {
		return nil, err
	}
	return append(own, issued...), nil
}

// revokeAllUserTokens is Rill's RevokeAllUserAuthTokens (rillctl token revoke --all): every
// token of u, those the user holds and those the user issued to act as others, under the rules
// of revoking one (the caller's own; a superuser's for anyone). With representing, it is Rill's
// RevokeRepresentativeAuthTokens widened to every issuer: only the tokens superusers issued to
// act as u, and only a superuser may ask.
func (a *API) revokeAllUserTokens(w http.ResponseWriter, r *http.Request, c *caller, representing bool) error {
	c.action = "token.revoke_all"
	email := r.URL.Query().Get("user_email")
	if representing {
		c.action = "token.revoke_representing"
		c.aim("user:" + email)
		if err := c.superuser(); err != nil {
			return errf(http.StatusForbidden, "only a superuser may revoke the tokens that act as a user (%s is not one)", c.actor)
		}
		if email == "" {
			return errf(http.StatusBadRequest, "representing: give the user whose assumed tokens to revoke (user_email)")
		}
	}
	u, err := a.tokenOwner(r.Context(), c, email)
	if err != nil {
		c.aim("user:" + email)
		return err
	}
	var ts []store.Token
	if representing {
		own, err := a.st.ListTokens(r.Context(), u.ID)
		if err != nil {
			return err
		}
		for _, t := range own {
			if t.IssuedBy != "" {
				ts = append(ts, t)
			}
		}
	} else if ts, err = a.userTokens(r.Context(), u.ID); err != nil {
		return err
	}
	revoked := []apiv1.TokenInfo{}
	for _, t := range ts {
		if err := a.st.DeleteToken(r.Context(), t.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // revoked meanwhile (or expired and purged)
			}
			return err
		}
		revoked = append(revoked, tokenInfo(t))
	}
	a.metrics.TokensRevoked(policy.KindUser, len(revoked))
	c.named = strconv.Itoa(len(revoked)) + " tokens"
	if representing {
		c.named += " acting as user:" + u.Email
	}
	return a.answer(w, r, c, c.action, "user:"+u.Email, http.StatusOK,
		apiv1.Revoked{Revoked: revoked}, apiv1.RillRevokedAll{TokensRevoked: len(revoked)})
}

// notAssumed refuses (403) a token a superuser assumed (POST /v1/tokens/represent) the
// issue of another token for its user, as what: the new token would outlive the assumed
// one's short life (up to never expiring), survive unassume, revoke --representing and the
// superuser's deletion, and name no superuser, so that every later use of it would be
// audited as the user alone. Rill has no such check (its IssueUserAuthToken takes a
// representative token's owner as the user); the issue asks for a short-lived token audited
// with both identities, which only holds if the assumed token cannot mint a lasting one.
// Unlike assumedBy, a failure to read the caller's token refuses rather than lets it through.
func (a *API) notAssumed(ctx context.Context, c *caller, what string) error {
	if !c.isUser() {
		return nil
	}
	t, err := a.st.GetToken(ctx, c.tid)
	if err != nil {
		return fmt.Errorf("read the caller's token: %w", err)
	}
	if t.IssuedBy == "" {
		return nil
	}
	by := a.emailOf(ctx, map[string]string{}, t.IssuedBy)
	return errf(http.StatusForbidden, "%s: this token was assumed by user:%s to act as %s, and a token it issued would outlive it under %s's name alone; use your own token, or have %s do it",
		what, by, c.p.Email, c.p.Email, c.p.Email)
}

// assumedBy is the email of the superuser who issued the caller's token to act as the caller
// ("" for any other token), read once per request: audit events of what an assumed token does
// name both identities.
func (a *API) assumedBy(ctx context.Context, c *caller) string {
	if c.assumedRead || !c.isUser() {
		return c.assumed
	}
	c.assumedRead = true
	t, err := a.st.GetToken(ctx, c.tid)
	if err != nil || t.IssuedBy == "" {
		return ""
	}
	c.assumed = a.emailOf(ctx, map[string]string{}, t.IssuedBy)
	return c.assumed
}
