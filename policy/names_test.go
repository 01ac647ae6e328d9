package policy

import (
	"regexp"
	"strings"
	"testing"
)

// TestNames holds the validators to the admin API's former regular expressions, on hostile
// inputs and on every short string over a small alphabet.
func TestNames(t *testing.T) {
	orgRe := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	projectRe := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	cases := []struct {
		in           string
		org, project bool
	}{
		{"acme", true, true}, {"a", true, true}, {"0-x", true, true}, {"Web_1", false, true},
		{strings.Repeat("a", 40), true, true}, {strings.Repeat("a", 41), false, true},
		{strings.Repeat("a", 64), false, true}, {strings.Repeat("a", 65), false, false},
		{"", false, false}, {"-a", false, false}, {"_a", false, false}, {".", false, false}, {"..", false, false},
		{"a/b", false, false}, {`a\b`, false, false}, {"a.b", false, false}, {"a%2Fb", false, false},
		{"a b", false, false}, {"a\x00", false, false}, {"a;b", false, false}, {"a?b", false, false},
		{"a#b", false, false}, {"ａcme", false, false}, {"acme\n", false, false}, {"ACME", false, true},
	}
	for _, c := range cases {
		if got := ValidOrgName(c.in); got != c.org {
			t.Errorf("ValidOrgName(%q) = %v, want %v", c.in, got, c.org)
		}
		if got := ValidProjectName(c.in); got != c.project {
			t.Errorf("ValidProjectName(%q) = %v, want %v", c.in, got, c.project)
		}
	}
	// Every string of up to 3 characters over an alphabet with each character class.
	alpha := []byte("aZ0-_./%\\ ")
	var gen func(prefix []byte, n int)
	tried := 0
	gen = func(prefix []byte, n int) {
		s := string(prefix)
		tried++
		if ValidOrgName(s) != orgRe.MatchString(s) || ValidProjectName(s) != projectRe.MatchString(s) {
			t.Errorf("%q: org %v/%v project %v/%v", s, ValidOrgName(s), orgRe.MatchString(s), ValidProjectName(s), projectRe.MatchString(s))
		}
		if n == 0 {
			return
		}
		for _, c := range alpha {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 3)
	if tried != 1+10+100+1000 {
		t.Fatalf("tried %d", tried)
	}
}
