package adminapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// TestMagicTokenRequestLimits: a filter far beyond what may be stored is refused before it is
// parsed (a megabyte of JSON object keys cost half a minute of CPU to parse, on the process that
// answers every check), and a refused request is charged to the issue rate like any.
func TestMagicTokenRequestLimits(t *testing.T) {
	e := setup(t)
	keys := make([]string, 60_000) // distinct keys: ~600 KiB
	for i := range keys {
		keys[i] = fmt.Sprintf(`"%d":0`, i)
	}
	body := `{"resources":[{"type":"explore","name":"s"}],"metrics_view_filters":{"mv":{"val":{` + strings.Join(keys, ",") + `}}}}`
	code, apiErr, _ := e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic", body)
	if code != 400 || !strings.Contains(apiErr.Message, "as sent, more than") {
		t.Fatalf("a 600 KiB filter: %d %q, want 400 before parsing", code, apiErr.Message)
	}
	// Whitespace counts as sent; the stored form is what the 1 KiB limit is about.
	padded := `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}` + strings.Repeat(" ", 2000)
	code, apiErr, b := e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
		`{"resources":[{"type":"explore","name":"s"}],"metrics_view_filters":{"mv":`+padded+`}}`)
	if code != 201 {
		t.Fatalf("a small filter sent with 2 KB of whitespace: %d %q, want 201", code, apiErr.Message)
	}
	var issued apiv1.IssuedMagicToken
	if err := json.Unmarshal(b, &issued); err != nil || issued.Token == "" {
		t.Fatalf("issued: %s %v", b, err)
	}
	// Introspection names a public URL's token as such, not as a JWT.
	code, _, b = e.call(t, "admin", "POST", "/v1/introspect", `{"token":"`+issued.Token+`"}`)
	var in apiv1.Introspection
	if err := json.Unmarshal(b, &in); code != 200 || err != nil || !in.Active || in.TokenType != "rill_mgc" {
		t.Fatalf("introspect a public URL's token: %d %s", code, b)
	}
}

// TestMagicTokenRillNames: an issue request in Rill's JSON names (lowerCamelCase, ttlMinutes an
// int64 as protojson writes it, a string) means the same as one in the proto's names; both
// names of one field are a 400.
func TestMagicTokenRillNames(t *testing.T) {
	e := setup(t)
	filter := `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`
	code, apiErr, b := e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
		`{"resources":[{"type":"explore","name":"s"}],"metricsViewFilters":{"mv":`+filter+`},"displayName":"partner","ttlMinutes":"60"}`)
	var got apiv1.IssuedMagicToken
	if code != 201 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("Rill's names: %d %q %s", code, apiErr.Message, b)
	}
	var mv bytes.Buffer // the answer is indented
	json.Compact(&mv, got.MetricsViewFilters["mv"])
	if got.DisplayName != "partner" || mv.String() != filter ||
		got.ExpiresAt.Sub(got.CreatedAt).Round(time.Minute) != time.Hour {
		t.Errorf("issued from Rill's names: %+v", got.MagicToken)
	}
	code, apiErr, _ = e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
		`{"resources":[{"type":"explore","name":"s"}],"display_name":"a","displayName":"b"}`)
	if code != 400 || !strings.Contains(apiErr.Message, "not both") {
		t.Errorf("both names of one field: %d %q, want 400", code, apiErr.Message)
	}
}
