package console

import (
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// expiring is the banner of a signed-in user whose own tokens expire soon.
type expiring struct {
	Tokens []apiv1.TokenInfo
	Within string
}

// Expiring is the signed-in user's own tokens that expire within Options.ExpiryWarning (nil:
// none, or no warning configured), read from the API as the user, once per page.
func (v *view) Expiring() *expiring {
	w := v.c.o.ExpiryWarning
	if v.s == nil || w <= 0 || v.Who.Kind != "user" {
		return nil
	}
	if v.expiring != nil {
		return *v.expiring
	}
	var out *expiring
	v.expiring = &out
	var ts []apiv1.TokenInfo
	if err := v.call("GET", "/v1/tokens", nil, nil, &ts); err != nil {
		v.c.log.Warn("console: listing the user's tokens for the expiry banner", "err", err)
		return nil
	}
	now := v.c.now()
	var soon []apiv1.TokenInfo
	for _, t := range ts {
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.After(now) && !t.ExpiresAt.After(now.Add(w)) {
			soon = append(soon, t)
		}
	}
	if len(soon) == 0 {
		return nil
	}
	out = &expiring{Tokens: soon, Within: windowText(w)}
	return out
}

// windowText says w as the banner does: whole days as days.
func windowText(w time.Duration) string {
	switch d := w / (24 * time.Hour); {
	case w%(24*time.Hour) != 0:
		return w.String()
	case d == 1:
		return "a day"
	default:
		return fmt.Sprintf("%d days", d)
	}
}
