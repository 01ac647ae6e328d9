package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// BenchmarkRenderTokens10k is My tokens' template alone with 10,000 rows (the page benchmark
// adds the in-process API call).
func BenchmarkRenderTokens10k(b *testing.B) {
	c, err := New(Options{API: http.NotFoundHandler()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	toks := make([]apiv1.TokenInfo, 10000)
	now := time.Now()
	for i := range toks {
		toks[i] = apiv1.TokenInfo{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Prefix: "rill_usr_0123456789", DisplayName: fmt.Sprintf("laptop %d", i), CreatedAt: now}
	}
	r := httptest.NewRequest("GET", "/ui/tokens", nil)
	v := &view{c: c, r: r, s: &session{csrf: "x"}, Title: "My tokens", Data: nil}
	for b.Loop() {
		v.Data = myTokensData{Count: len(toks), Rows: myTokenRows(tokenRows(toks, ""), "x"), TTLChoices: ttlChoices}
		w := httptest.NewRecorder()
		w.Body = nil
		c.render(discard{w}, v, "tokens", 200)
	}
}

type discard struct{ http.ResponseWriter }

func (discard) Write(b []byte) (int, error) { return io.Discard.Write(b) }

// TestTokenRowsEscape: the hand-written rows of My tokens escape every value, in text and in
// attributes, as html/template would.
func TestTokenRowsEscape(t *testing.T) {
	evil := `<script>alert(1)</script>"'&`
	out := string(myTokenRows([]tokenRow{{ID: `x"><img src=x onerror=alert(1)>`, Prefix: evil, Name: evil, Created: evil, Expires: evil, LastUsed: evil}}, `c"<`))
	for _, bad := range []string{"<script>", `"><img`, `'&`, `c"<`} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;") || !strings.Contains(out, `value="x&#34;&gt;&lt;img`) {
		t.Errorf("not escaped as expected:\n%s", out)
	}
}
