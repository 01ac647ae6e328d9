package token

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// The scalar rules of protojson (google.golang.org/protobuf internal/encoding/json) that the sec
// encoding follows: how it writes a double, which \u escapes it refuses, how it reads an int32.

// appendProtoFloat writes a double as protojson does (internal/encoding/json appendFloat, after
// encoding/json): 'f' format, or 'e' below 1e-6 and from 1e21, with e-07 shortened to e-7.
func appendProtoFloat(out []byte, n float64) []byte {
	format := byte('f')
	if abs := math.Abs(n); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	out = strconv.AppendFloat(out, n, format, -1, 64)
	if format == 'e' {
		l := len(out)
		if l >= 4 && out[l-4] == 'e' && out[l-3] == '-' && out[l-2] == '0' {
			out[l-2] = out[l-1]
			out = out[:l-1]
		}
	}
	return out
}

// checkSurrogates refuses a \u escape of half a UTF-16 surrogate pair, which protojson refuses
// and encoding/json would read as U+FFFD: a high surrogate must be followed by a \u escape of a
// low one, and a low one must follow a high one.
func checkSurrogates(raw []byte) error {
	in := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\' && i+1 < len(raw):
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(raw, i+2)
			if !ok {
				return nil // a bad escape: the JSON reader says so
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.New("invalid escape code: a lone low surrogate")
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u'
				if ok {
					lo, ok = hex4(raw, i+3)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return errors.New("invalid escape code: a high surrogate without its low half")
				}
				i += 6
			}
		}
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 16)
	return rune(n), err == nil
}

// protoInt32 reads a JSON number as protojson reads an int32 (google.golang.org/protobuf
// internal/encoding/json: parseNumberParts, normalizeToIntString, then strconv.ParseInt): in
// decimal, exactly, an integer of at most 20 digits once the exponent is applied.
func protoInt32(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var intp, frac, exp string
	switch {
	case s == "":
		return 0, false
	case s[0] == '0':
		s = s[1:]
	case s[0] >= '1' && s[0] <= '9':
		n := 1
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		intp, s = s[:n], s[n:]
	default:
		return 0, false
	}
	if len(s) >= 2 && s[0] == '.' {
		n := 1
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		frac, s = strings.TrimRight(s[1:n], "0"), s[n:]
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		exp = s[1:]
	}
	if intp == "" && frac == "" {
		return 0, true
	}
	e := int64(0)
	if exp != "" {
		var err error
		if e, err = strconv.ParseInt(exp, 10, 32); err != nil {
			return 0, false
		}
	}
	var num string
	if e >= 0 {
		if int64(len(frac)) > e || int64(len(intp))+e > 20 {
			return 0, false
		}
		num = intp + frac + strings.Repeat("0", int(e)-len(frac))
	} else {
		at := int64(len(intp)) + e
		if len(frac) > 0 || at < 0 || strings.Trim(intp[at:], "0") != "" {
			return 0, false
		}
		num = intp[:at]
	}
	if neg {
		num = "-" + num
	}
	n, err := strconv.ParseInt(num, 10, 32)
	return n, err == nil
}
