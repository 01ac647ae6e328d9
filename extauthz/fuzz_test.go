package extauthz

import (
	"net/url"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
)

// FuzzFromPath feeds arbitrary request paths (a client controls them fully) to the path ->
// target parser: it must not panic; a target it reads is a valid org and project (so it holds
// no "/", "\", "." or anything outside the name rules); the query plays no part; and the path as
// an upstream sees it, decoded and normalized, names that same target (or none when it reads
// none), so no path can name one target to us and another to the upstream.
func FuzzFromPath(f *testing.F) {
	for _, s := range []string{"/v1/orgs/acme/projects/web/x", "/v1/organizations/acme/projects/web", "/v1/orgs/acme",
		"/v1/orgs/acme/projects/web?x=/v1/orgs/other#f", "/v1/orgs/%41cme/projects/w%2Feb/", "/v1/orgs//projects/web",
		"/v1/orgs/%zz/projects/web", "/v1/orgs/acme/projects/", "/v2/orgs/acme", "",
		"/v1/orgs/acme/projects/web/../../victim/projects/secret/x", "/v1/orgs/acme/projects/x%2F..%2F..%2Fvictim%2Fprojects%2Fsecret/y",
		"/v1/orgs/acme/projects/web/%2e%2E/x", "/v1/orgs/acme/projects/web/..;/..;/victim", `/v1/orgs/acme/projects/web\..\..\victim`,
		"/v1/%6Frgs/victim/projects/secret", "/v1/x/../orgs/victim/projects/secret", "//v1/orgs/victim", "/v1/orgs/acme/projects/web%252F..",
		"/v1/orgs/acme/projects/web#/../../victim", "v1/orgs/victim", "/v1/orgs/ACME/projects/Web_1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		org, project, fault := fromPath(p)
		if fault != faultNone {
			if org != "" || project != "" {
				t.Fatalf("fromPath(%q) refused (%s) but returned %q/%q", p, pathFaultReasons[fault], org, project)
			}
			return
		}
		if org != "" && !policy.ValidOrgName(org) || project != "" && !policy.ValidProjectName(project) || org == "" && project != "" {
			t.Fatalf("fromPath(%q) accepted the target %q/%q", p, org, project)
		}
		if q := strings.IndexByte(p, '?'); q >= 0 {
			if o2, p2, f2 := fromPath(p[:q]); o2 != org || p2 != project || f2 != faultNone {
				t.Fatalf("fromPath(%q) = %q/%q, but without its query %q/%q (%d)", p, org, project, o2, p2, f2)
			}
			p = p[:q]
		}
		if uo, up := upstreamTarget(p); uo != org || up != project {
			t.Fatalf("fromPath(%q) = %q/%q, but an upstream sees %q/%q", p, org, project, uo, up)
		}
	})
}

// upstreamTarget is the target a lenient upstream reads from p: percent-decoded, backslashes
// taken for slashes, path parameters dropped from dot-segments, slashes merged and dot-segments
// resolved.
func upstreamTarget(p string) (org, project string) {
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	p = strings.ReplaceAll(p, `\`, "/")
	var segs []string
	parts := strings.Split(p, "/")
	for i, s := range parts {
		dot, _, _ := strings.Cut(s, ";")
		switch {
		case dot == "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		case dot == "." || s == "" && i < len(parts)-1:
		default:
			segs = append(segs, s)
		}
	}
	if len(segs) < 3 || segs[0] != "v1" || segs[1] != "orgs" && segs[1] != "organizations" || segs[2] == "" {
		return "", ""
	}
	if len(segs) >= 5 && segs[3] == "projects" {
		return segs[2], segs[4]
	}
	return segs[2], ""
}

// TestDoubleEncodedPrefix: a prefix encoded twice names no target to us but victim's to an
// upstream that decodes twice; it is refused rather than checked against the default org.
func TestDoubleEncodedPrefix(t *testing.T) {
	for _, p := range []string{"/v1/%256Frgs/victim/projects/secret/x", "/%2576%2531/orgs/victim/projects/secret"} {
		if org, project, f := fromPath(p); f != faultDoubleEncoded {
			t.Errorf("fromPath(%q) = %q/%q, fault %d; want faultDoubleEncoded", p, org, project, f)
		}
	}
	// A %25 that decodes to the same target either way is fine.
	if org, project, f := fromPath("/v1/orgs/acme/projects/web/q%2525"); f != faultNone || org != "acme" || project != "web" {
		t.Errorf("a harmless %%25: %q/%q, fault %d", org, project, f)
	}
}
