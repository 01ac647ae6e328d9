package ctl_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

var (
	newKeyRe = regexp.MustCompile(`^New signing key (\S+) is in the JWKS now and signs from (.+) \(in (\S+)\)\.$`)
	nowKeyRe = regexp.MustCompile(`^New signing key (\S+) signs now\.$`)
)

// TestSigningKeyCommands runs rotate-signing-key, its --now, retire-signing-key and
// signing-keys through the real rillctl: what each prints, the states they leave, and the
// refusals (a second scheduled rotation, retiring the key that signs, an unknown kid, a
// non-superuser).
func TestSigningKeyCommands(t *testing.T) {
	d := testenv.Start(t, "", "--signing-key-activation-delay", "1h")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "TZ=UTC"}}
	su := root.as(d.Token)

	list := func() map[string][]string {
		t.Helper()
		return rows(t, su.ok("admin", "signing-keys"), "KID|STATE|IN JWKS|CREATED|SIGNS FROM|SIGNS UNTIL|VERIFIES UNTIL|RETIRED")
	}
	first := list()
	if len(first) != 1 {
		t.Fatalf("a fresh daemon's keys: %v", first)
	}
	var k1 string
	for kid, r := range first {
		k1 = kid
		if r[1] != "signing" || r[2] != "yes" || r[5] != "-" || r[6] != "-" || r[7] != "-" {
			t.Errorf("the first key: %v", r)
		}
	}

	out := lines(su.ok("admin", "rotate-signing-key"))
	m := newKeyRe.FindStringSubmatch(out[0])
	if m == nil || m[3] != "1h0m0s" && m[3] != "59m59s" || len(out) != 2 || out[1] != k1+" signs until then, and verifies until the last token it signed expires." {
		t.Fatalf("rotate-signing-key printed %q", out)
	}
	k2 := m[1]
	if l := list(); l[k1][1] != "signing" || l[k2][1] != "next" || l[k2][2] != "yes" || l[k2][4] != m[2] || l[k1][5] != m[2] {
		t.Errorf("after a scheduled rotation: %v", l)
	}
	su.fails("a rotation is already scheduled: key "+k2, "admin", "rotate-signing-key")
	su.fails("--now", "admin", "rotate-signing-key")
	su.fails("the key signs new tokens now: key "+k1+" would leave no key that signs; make another key sign first (rillctl admin rotate-signing-key --now)",
		"admin", "retire-signing-key", k1)

	out = lines(su.ok("admin", "rotate-signing-key", "--now"))
	m = nowKeyRe.FindStringSubmatch(out[0])
	if m == nil || len(out) != 3 || !strings.HasPrefix(out[1], k1+" no longer signs") || !strings.HasSuffix(out[1], "rillctl admin retire-signing-key "+k1) ||
		out[2] != "Retired the scheduled key(s) it replaces, which had signed nothing: "+k2+"." {
		t.Fatalf("rotate-signing-key --now printed %q", out)
	}
	k3 := m[1]
	out = lines(su.ok("admin", "retire-signing-key", k1))
	if len(out) != 1 || !strings.HasPrefix(out[0], "Retired signing key "+k1+" (at ") || !strings.Contains(out[0], "out of the JWKS") {
		t.Errorf("retire-signing-key printed %q", out)
	}
	l := list()
	if l[k1][1] != "retired" || l[k1][2] != "no" || l[k1][7] == "-" || l[k2][1] != "retired" || l[k2][2] != "no" || l[k3][1] != "signing" {
		t.Errorf("after --now and a retire: %v", l)
	}
	var asJSON []struct{ KID, State string }
	if err := json.Unmarshal([]byte(su.ok("admin", "signing-keys", "--json")), &asJSON); err != nil || len(asJSON) != 3 {
		t.Errorf("signing-keys --json: %v %v", asJSON, err)
	}
	su.fails("no signing key has that kid", "admin", "retire-signing-key", "nope")
	resp, err := http.Get(d.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if jwks := string(b); strings.Contains(jwks, k1) || strings.Contains(jwks, k2) || !strings.Contains(jwks, k3) {
		t.Errorf("JWKS after the retires: %s", jwks)
	}

	// Only superusers.
	su.ok("org", "create", "acme")
	tok := svcTokenRe.FindStringSubmatch(lines(su.ok("service", "create", "robot", "--org", "acme", "--org-role", "admin"))[1])[1]
	for _, args := range [][]string{{"admin", "signing-keys"}, {"admin", "rotate-signing-key"}, {"admin", "retire-signing-key", k3}} {
		root.as(tok).fails("only a superuser may do this", args...)
	}
}
