package metrics_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/metrics"
)

// TestReadmeListsEveryLabelValue: the README's Observability section lists every kind and
// reason checks_total takes (kind="magic", a public URL's, was missing).
func TestReadmeListsEveryLabelValue(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, obs, ok := strings.Cut(string(b), "\n## Observability\n")
	if !ok {
		t.Fatal("README has no Observability section")
	}
	obs, _, _ = strings.Cut(obs, "\n## ")
	obs = strings.Join(strings.Fields(obs), " ")
	kinds := regexp.MustCompile(`checks_total\{result, kind, reason\}` + "`" + ` \(result allowed\|denied\|error; kind ([a-z_|]+)`).FindStringSubmatch(obs)
	if kinds == nil {
		t.Fatal("the Observability section does not list checks_total's kinds")
	}
	want := []string{metrics.KindUser, metrics.KindService, metrics.KindEphemeral, metrics.KindMagic, metrics.KindExternalJWT, metrics.KindNone}
	if got := strings.Split(kinds[1], "|"); !slices.Equal(got, want) {
		t.Errorf("README lists kinds %v, checks_total takes %v", got, want)
	}
	reasons := regexp.MustCompile(`reason one of a fixed set: ([a-z_, ]+)\)`).FindStringSubmatch(obs)
	if reasons == nil {
		t.Fatal("the Observability section does not list checks_total's reasons")
	}
	if got := strings.Split(reasons[1], ", "); !slices.Equal(got, metrics.Reasons) {
		t.Errorf("README lists reasons %v, checks_total takes %v", got, metrics.Reasons)
	}
}
