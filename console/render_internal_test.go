package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
