package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalid wraps the refusal of text no engine may store (see CheckText): a request that
// carries it is a 400, a record that holds it is named by what it is.
var ErrInvalid = errors.New("invalid text")

// CheckText refuses text that one of the engines cannot store as it is: a NUL character
// (PostgreSQL's text and jsonb refuse it; Badger would keep it, so a store that holds it could
// not be copied to PostgreSQL) and bytes that are not UTF-8 (PostgreSQL refuses them, and JSON
// would silently turn them into U+FFFD). Both engines, the admin API, copy-store, restore and
// import-rill use this one rule.
func CheckText(field, s string) error {
	if p := textProblem(field, s); p != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, p)
	}
	return nil
}

// textProblem says what is wrong with s, or "".
func textProblem(field, s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("%s holds a NUL character (byte %d); text may not contain one", field, i)
	}
	if !utf8.ValidString(s) {
		i := 0
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return fmt.Sprintf("%s is not valid UTF-8 (byte %d is 0x%02x)", field, i, s[i])
	}
	return ""
}

// CheckFields applies CheckText to every string v holds, however deep: struct fields (named by
// their JSON names), map keys and values, slice elements, values inside interfaces (custom
// attributes). Bytes ([]byte, [N]byte: hashes, keys) and times are not text and are skipped.
// what names v in the error ("user 1234", "request body").
func CheckFields(what string, v any) error {
	if p := checkValue("", reflect.ValueOf(v), 0); p != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, what, p)
	}
	return nil
}

// join names a field of path: a.b, a.b[2], a["odd key"].
func join(path, name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + quoteKey(name) + "]"
	case path == "":
		return name
	}
	return path + "." + name
}

var timeType = reflect.TypeOf(time.Time{})

// maxDepth bounds the walk; JSON decoding already bounds nesting, this is for cycles.
const maxDepth = 64

func checkValue(path string, v reflect.Value, depth int) string {
	if depth > maxDepth || !v.IsValid() {
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		field := "the text"
		if path != "" {
			field = "field " + path
		}
		return textProblem(field, v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return checkValue(path, v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == timeType {
			return ""
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
				continue
			} else if tag != "" {
				name = tag
			}
			if p := checkValue(join(path, name), v.Field(i), depth+1); p != "" {
				return p
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.String {
				if p := textProblem("a key of field "+path, k.String()); p != "" {
					return p
				}
			}
			if p := checkValue(join(path, k.String()), it.Value(), depth+1); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "" // bytes, not text
		}
		for i := range v.Len() {
			if p := checkValue(fmt.Sprintf("%s[%d]", path, i), v.Index(i), depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}

// quoteKey quotes a map key for a message, without the NUL or broken bytes it may hold.
func quoteKey(k string) string { return fmt.Sprintf("%+q", k) }

// Validate checks every text field of every record of the snapshot, and says which record
// holds the first one no engine may store: a copy or restore is refused before it writes.
func (s *Snapshot) Validate() error {
	var bad []string
	check := func(what string, v any) {
		if len(bad) < 20 {
			if err := CheckFields(what, v); err != nil {
				bad = append(bad, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
			}
		}
	}
	for _, o := range s.Orgs {
		check(fmt.Sprintf("org %+q", o.Name), o)
	}
	for _, p := range s.Projects {
		check(fmt.Sprintf("project %+q", ProjectKey(p.Org, p.Name)), p)
	}
	for _, u := range s.Users {
		check(fmt.Sprintf("user %s (%+q)", u.ID, u.Email), u)
	}
	for _, sv := range s.Services {
		check(fmt.Sprintf("service %s (%+q)", sv.ID, sv.Org+"/"+sv.Name), sv)
	}
	for _, t := range s.Tokens {
		check(fmt.Sprintf("token %s (%s of %s)", t.ID, t.Kind, t.OwnerID), t)
	}
	for _, k := range s.SigningKeys {
		check(fmt.Sprintf("signing key %+q", k.KID), k)
	}
	for _, e := range s.Audit {
		check(fmt.Sprintf("audit event of %s", e.Time.Format(time.RFC3339Nano)), e)
	}
	for _, t := range s.Tombstones {
		check(fmt.Sprintf("tombstone of token %s", t.ID), t)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: records no engine may store (fix them in the source first):\n  %s", ErrInvalid, strings.Join(bad, "\n  "))
	}
	return nil
}
