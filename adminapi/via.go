package adminapi

import "context"

type viaKey struct{}

// WithVia marks the requests made with ctx as coming through a front end of the daemon's own
// (the web console passes "ui"): their audit events say so in Detail ("via: ui"). It is a
// context value, set in-process only, so no HTTP client can claim it.
func WithVia(ctx context.Context, via string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

// viaDetail is the audit Detail for a request made with ctx: "via: <front end>", or "" for a
// request that came over HTTP.
func viaDetail(ctx context.Context) string {
	if v, _ := ctx.Value(viaKey{}).(string); v != "" {
		return "via: " + v
	}
	return ""
}
