package keys

import (
	"strings"
	"testing"
	"time"
)

// TestDescribeSaysWhatPublishedSays: the words the API sends with each state agree with whether
// the key is in the JWKS, and no two states read alike.
func TestDescribeSaysWhatPublishedSays(t *testing.T) {
	seen := map[string]State{}
	for _, tc := range []struct {
		st     Status
		inJWKS bool
	}{
		{Status{State: Next}, true},
		{Status{State: Signing}, true},
		{Status{State: Signing, SignsUntil: time.Unix(1, 0)}, true},
		{Status{State: Verifying}, true},
		{Status{State: Expired}, false},
		{Status{State: Retired}, false},
	} {
		d := tc.st.Describe()
		if tc.st.Published() != tc.inJWKS || strings.HasPrefix(d, "in the JWKS") != (tc.inJWKS && tc.st.State != Signing) ||
			strings.Contains(d, "out of the JWKS") == tc.inJWKS {
			t.Errorf("%s: published %v, described %q", tc.st.State, tc.st.Published(), d)
		}
		if other, ok := seen[d]; ok {
			t.Errorf("%s and %s both read %q", other, tc.st.State, d)
		}
		seen[d] = tc.st.State
	}
}
