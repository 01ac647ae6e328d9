package store

import (
	"testing"
	"time"
)

func TestTokenExpired(t *testing.T) {
	now := time.Now()
	cases := []struct {
		exp  time.Time
		want bool
	}{{time.Time{}, false}, {now.Add(time.Second), false}, {now, true}, {now.Add(-time.Second), true}}
	for _, c := range cases {
		tk := Token{ExpiresAt: c.exp}
		if got := tk.Expired(now); got != c.want {
			t.Errorf("Expired(exp=%v) = %v", c.exp, got)
		}
	}
}
