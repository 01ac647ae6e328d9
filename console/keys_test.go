package console_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// keyRow is one signing key as a client shows it: the state, whether it is in the JWKS, and
// its times to the minute (UTC), "-" for none.
type keyRow struct {
	State, InJWKS                                string
	Created, From, Until, VerifiesUntil, Retired string
}

var (
	keysTableRe = regexp.MustCompile(`(?s)<table id="keys">.*?<tbody>(.*?)</tbody>`)
	trRe        = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	tdRe        = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRe       = regexp.MustCompile(`<[^>]*>`)
	smallRe     = regexp.MustCompile(`(?s)<small>(.*?)</small>`)
)

// TestSigningKeyStatesAgree walks a key ring through a scheduled rotation, a rotation --now
// and a retire on a real daemon, and after each step reads the keys four ways: the admin API,
// the real rillctl, the console's Overview and the JWKS document. All four agree on every key
// (state, in the JWKS or not, the times), and the states are the ones each step must leave.
// The console once worked the states out itself and called the key that a --now rotation had
// replaced "published, not signing yet".
func TestSigningKeyStatesAgree(t *testing.T) {
	d := testenv.Start(t, "", "--signing-key-activation-delay", "1h")
	rillctl := testenv.Bin(t, "rillctl")
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: d.URL(), c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r := b.signIn(d.Token); r.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", r.code, r.body)
	}
	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(rillctl, args...)
		cmd.Env = append(os.Environ(), "RILLCTL_API_URL="+d.URL(), "RILLCTL_TOKEN="+d.Token, "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rillctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	minute := func(tm time.Time) string {
		if tm.IsZero() {
			return "-"
		}
		return tm.UTC().Format("2006-01-02 15:04")
	}
	yes := map[bool]string{true: "yes", false: "no"}

	fromAPI := func() (map[string]keyRow, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest("GET", d.URL()+"/v1/admin/signing-keys", nil)
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ks []apiv1.SigningKey
		if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET signing-keys: %d %v", resp.StatusCode, err)
		}
		rows, desc := map[string]keyRow{}, map[string]string{}
		for _, k := range ks {
			rows[k.KID] = keyRow{k.State, yes[k.InJWKS], minute(k.CreatedAt), minute(k.ActivatesAt), minute(k.SignsUntil), minute(k.VerifiesUntil), minute(k.RetiredAt)}
			desc[k.KID] = k.Description
		}
		return rows, desc
	}
	fromCtl := func() map[string]keyRow {
		t.Helper()
		ls := strings.Split(strings.TrimSpace(ctl("admin", "signing-keys")), "\n")
		split := regexp.MustCompile(`\s{2,}`)
		if h := strings.Join(split.Split(ls[0], -1), "|"); h != "KID|STATE|IN JWKS|CREATED|SIGNS FROM|SIGNS UNTIL|VERIFIES UNTIL|RETIRED" {
			t.Fatalf("rillctl header %q", h)
		}
		rows := map[string]keyRow{}
		for _, l := range ls[1:] {
			f := split.Split(strings.TrimSpace(l), -1)
			if len(f) != 8 {
				t.Fatalf("rillctl row %q", l)
			}
			rows[f[0]] = keyRow{f[1], f[2], f[3], f[4], f[5], f[6], f[7]}
		}
		return rows
	}
	fromConsole := func() (map[string]keyRow, map[string]string) {
		t.Helper()
		r := b.get("/ui/overview")
		m := keysTableRe.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("overview: %d\n%s", r.code, r.body)
		}
		rows, desc := map[string]keyRow{}, map[string]string{}
		for _, tr := range trRe.FindAllStringSubmatch(m[1], -1) {
			var c []string
			for _, td := range tdRe.FindAllStringSubmatch(tr[1], -1) {
				c = append(c, td[1])
			}
			if len(c) != 8 {
				t.Fatalf("console row %q", tr[1])
			}
			text := func(s string) string {
				return strings.TrimSuffix(strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(s, ""))), " UTC")
			}
			state, _, _ := strings.Cut(c[1], "<br>")
			kid := text(c[0])
			rows[kid] = keyRow{strings.TrimPrefix(text(state), "✔ "), text(c[2]), text(c[3]), text(c[4]), text(c[5]), text(c[6]), text(c[7])}
			if s := smallRe.FindStringSubmatch(c[1]); s != nil {
				desc[kid] = html.UnescapeString(s[1])
			}
		}
		return rows, desc
	}
	inJWKS := func() map[string]bool {
		t.Helper()
		resp, err := http.Get(d.URL() + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct{ Keys []struct{ KID string } }
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range doc.Keys {
			out[k.KID] = true
		}
		return out
	}
	// check reads the four and compares them with want (kid -> state) and with each other.
	check := func(step string, want map[string]string) map[string]keyRow {
		t.Helper()
		api, apiDesc := fromAPI()
		cli := fromCtl()
		con, conDesc := fromConsole()
		jwks := inJWKS()
		if len(api) != len(want) || len(cli) != len(want) || len(con) != len(want) {
			t.Fatalf("%s: %d keys in the API, %d from rillctl, %d in the console; want %d", step, len(api), len(cli), len(con), len(want))
		}
		for kid, state := range want {
			a := api[kid]
			if a.State != state {
				t.Errorf("%s: key %s is %q in the API, want %q", step, kid, a.State, state)
			}
			if cli[kid] != a {
				t.Errorf("%s: key %s\n API:     %+v\n rillctl: %+v", step, kid, a, cli[kid])
			}
			if con[kid] != a {
				t.Errorf("%s: key %s\n API:     %+v\n console: %+v", step, kid, a, con[kid])
			}
			if apiDesc[kid] == "" || conDesc[kid] != apiDesc[kid] {
				t.Errorf("%s: key %s described %q by the API, %q by the console", step, kid, apiDesc[kid], conDesc[kid])
			}
			if published := state == "next" || state == "signing" || state == "verifying"; jwks[kid] != published || (a.InJWKS == "yes") != published {
				t.Errorf("%s: key %s (%s): in the JWKS document %v, the API says %s", step, kid, state, jwks[kid], a.InJWKS)
			}
		}
		return api
	}
	var k1 string
	for kid := range fromCtl() {
		k1 = kid
	}
	check("a fresh daemon", map[string]string{k1: "signing"})

	// A scheduled rotation: the new key is published and signs in an hour; the old one signs
	// until then.
	out := ctl("admin", "rotate-signing-key")
	k2 := regexp.MustCompile(`New signing key (\S+) is in the JWKS`).FindStringSubmatch(out)
	if k2 == nil {
		t.Fatalf("rotate printed %q", out)
	}
	api := check("after a scheduled rotation", map[string]string{k1: "signing", k2[1]: "next"})
	if api[k1].Until != api[k2[1]].From || api[k1].Until == "-" {
		t.Errorf("the old key signs until %s, the new one from %s", api[k1].Until, api[k2[1]].From)
	}

	// --now: a third key signs at once, the scheduled one (which signed nothing) is retired, the
	// first verifies only: still in the JWKS, until its last token expires.
	out = ctl("admin", "rotate-signing-key", "--now")
	k3 := regexp.MustCompile(`New signing key (\S+) signs now`).FindStringSubmatch(out)
	if k3 == nil {
		t.Fatalf("rotate --now printed %q", out)
	}
	api = check("after a rotation --now", map[string]string{k1: "verifying", k2[1]: "retired", k3[1]: "signing"})
	if api[k1].VerifiesUntil == "-" || api[k2[1]].Retired == "-" {
		t.Errorf("after --now: %+v", api)
	}

	// Retire the first: out of the JWKS at once.
	ctl("admin", "retire-signing-key", k1)
	check("after a retire", map[string]string{k1: "retired", k2[1]: "retired", k3[1]: "signing"})
}
