package console

import (
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

type keyInfo struct {
	KID              string
	Created, Retired time.Time
	Signing          bool
	// Expires is when a retired key leaves the JWKS (tokens it signed have all expired).
	Expires time.Time
}

type overviewData struct {
	Users, Services         uint64
	TokensErr               string
	Chart                   template.HTML
	Minutes                 []minutePoint
	HourAllowed, HourDenied float64
	Reasons                 []reasonCount
	Keys                    []keyInfo
	KeysErr                 string
	Replicas                []ReplicaState
	Postgres                bool
	Now                     time.Time
}

// overview is the daemon's state at a glance, for superusers (it is about every org).
func (c *Console) overview(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "overview", "Overview"
	if !v.Who.Superuser {
		return &apiError{Status: http.StatusForbidden, Message: "the Overview is about every org, so it is for superusers only"}
	}
	ctx := v.r.Context()
	now := c.now()
	d := overviewData{Now: now.UTC()}
	if c.o.Store != nil {
		if n, err := c.o.Store.CountTokens(ctx); err != nil {
			c.log.Warn("console: count tokens", "err", err)
			d.TokensErr = "The token counts could not be read from the store."
		} else {
			d.Users, d.Services = n[token.User], n[token.Service]
		}
		if ks, err := c.o.Store.ListSigningKeys(ctx); err != nil {
			c.log.Warn("console: list signing keys", "err", err)
			d.KeysErr = "The signing keys could not be read from the store."
		} else {
			d.Keys = c.keyInfos(ks, now)
		}
	}
	pts, reasons := c.ring.lastHour(now, c.o.Metrics.CheckTotals())
	for _, p := range pts {
		d.HourAllowed += p.Allowed
		d.HourDenied += p.Denied
	}
	d.Chart, d.Minutes, d.Reasons = chartSVG(pts), pts, sortedReasons(reasons)
	slices.Reverse(d.Minutes) // the table reads newest first
	if c.o.Replica != nil {
		d.Postgres, d.Replicas = true, c.o.Replica(ctx)
	}
	v.Data = d
	c.render(w, v, "overview", http.StatusOK)
	return nil
}

// keyInfos describes the signing keys as keys.NewKeyset uses them: the newest unretired key
// signs; a retired one verifies (and stays in the JWKS) until KeyMaxTTL plus leeway after it
// retired, and is not listed after that.
func (c *Console) keyInfos(recs []store.SigningKey, now time.Time) []keyInfo {
	signer := -1
	for i, k := range recs {
		if k.RetiredAt.IsZero() && (signer < 0 || !k.CreatedAt.Before(recs[signer].CreatedAt)) {
			signer = i
		}
	}
	out := make([]keyInfo, 0, len(recs))
	for i, k := range recs {
		ki := keyInfo{KID: k.KID, Created: k.CreatedAt, Retired: k.RetiredAt, Signing: i == signer}
		if !k.RetiredAt.IsZero() {
			ki.Expires = k.RetiredAt.Add(c.o.KeyMaxTTL + token.Leeway)
			if ki.Expires.Before(now) {
				continue
			}
		}
		out = append(out, ki)
	}
	slices.SortFunc(out, func(a, b keyInfo) int { return b.Created.Compare(a.Created) })
	return out
}
