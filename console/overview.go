package console

import (
	"errors"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/token"
)

type overviewData struct {
	Users, Services         uint64
	TokensErr               string
	Chart                   template.HTML
	Minutes                 []minutePoint
	HourAllowed, HourDenied float64
	Reasons                 []reasonCount
	Keys                    []apiv1.SigningKey
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
	}
	// The keys as the admin API states them (keys.Status): the same reading rillctl prints.
	// A failure is the API's to log (sampled in an outage); the page says what it answered.
	if err := v.call("GET", "/v1/admin/signing-keys", nil, nil, &d.Keys); err != nil {
		msg := err.Error()
		if e := (*apiError)(nil); errors.As(err, &e) {
			msg = e.Message
		}
		d.KeysErr = "The signing keys could not be read: " + msg
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
