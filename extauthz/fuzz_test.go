package extauthz

import (
	"strings"
	"testing"
)

// FuzzFromPath feeds arbitrary request paths (a client controls them fully) to the path ->
// target parser: it must not panic, and a target it reads always names an org and never holds
// a query or fragment.
func FuzzFromPath(f *testing.F) {
	for _, s := range []string{"/v1/orgs/acme/projects/web/x", "/v1/organizations/acme/projects/web", "/v1/orgs/acme",
		"/v1/orgs/acme/projects/web?x=/v1/orgs/other#f", "/v1/orgs/%41cme/projects/w%2Feb/", "/v1/orgs//projects/web",
		"/v1/orgs/%zz/projects/web", "/v1/orgs/acme/projects/", "/v2/orgs/acme", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		org, project, ok := fromPath(p)
		if !ok {
			if org != "" || project != "" {
				t.Fatalf("fromPath(%q) refused but returned %q/%q", p, org, project)
			}
			return
		}
		if org == "" {
			t.Fatalf("fromPath(%q) accepted an empty org", p)
		}
		if q := strings.IndexAny(p, "?#"); q >= 0 {
			if o2, p2, _ := fromPath(p[:q]); o2 != org || p2 != project {
				t.Fatalf("fromPath(%q) = %q/%q, but without its query or fragment %q/%q", p, org, project, o2, p2)
			}
		}
	})
}
