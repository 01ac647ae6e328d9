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

// textOK is the fast answer of CheckText: s holds no NUL and is UTF-8.
func textOK(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

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
	if t, ok := v.(Token); ok { // the bulk of bulk loads: its text fields, without reflection
		v = &t
	}
	if t, ok := v.(*Token); ok {
		for _, f := range [...]struct{ name, s string }{{"kind", string(t.Kind)}, {"owner_id", t.OwnerID},
			{"display_name", t.DisplayName}, {"prefix", t.Prefix}, {"created_by", t.CreatedBy}, {"issued_by", t.IssuedBy},
			{"last_used_ip", t.LastUsedIP}, {"last_used_user_agent", t.LastUsedUserAgent}} {
			if textOK(f.s) {
				continue
			}
			if p := textProblem("field "+f.name, f.s); p != "" {
				return fmt.Errorf("%w: %s: %s", ErrInvalid, what, p)
			}
		}
		if p := checkLimits(t.AllowedNetworks, t.AllowedOrigins); p != "" {
			return fmt.Errorf("%w: %s: %s", ErrInvalid, what, p)
		}
		if t.Magic != nil {
			if p := checkValue(reflect.ValueOf(t.Magic), 0); p != nil {
				return fmt.Errorf("%w: %s: %s", ErrInvalid, what, p.under("magic").String())
			}
		}
		return nil
	}
	if p := checkValue(reflect.ValueOf(v), 0); p != nil {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, what, p.String())
	}
	return nil
}

// problem is text CheckFields refused, and where: the path is built only on the way back up
// from it, so a walk that finds nothing allocates nothing for names.
type problem struct {
	text string
	key  bool     // a map key rather than a value
	segs []string // path segments, innermost first: "name", "[2]", `["odd key"]`
}

func (p *problem) String() string {
	var path strings.Builder
	for i := len(p.segs) - 1; i >= 0; i-- {
		seg := p.segs[i]
		if seg[0] != '[' && path.Len() > 0 {
			path.WriteByte('.')
		}
		path.WriteString(seg)
	}
	switch {
	case p.key && path.Len() == 0:
		return textProblem("a key", p.text)
	case p.key:
		return textProblem("a key of field "+path.String(), p.text)
	case path.Len() == 0:
		return textProblem("the text", p.text)
	}
	return textProblem("field "+path.String(), p.text)
}

// under adds the segment that names where p was found in its parent.
func (p *problem) under(name string) *problem {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if !plain {
		name = "[" + quoteKey(name) + "]"
	}
	p.segs = append(p.segs, name)
	return p
}

var timeType = reflect.TypeOf(time.Time{})

// maxDepth bounds the walk; JSON decoding already bounds nesting, this is for cycles.
const maxDepth = 64

func checkValue(v reflect.Value, depth int) *problem {
	if depth > maxDepth || !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if textOK(v.String()) {
			return nil
		}
		return &problem{text: v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkValue(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == timeType {
			return nil
		}
		t := v.Type()
		for i := range t.NumField() {
			if p := checkValue(v.Field(i), depth+1); p != nil {
				f := t.Field(i)
				name := f.Name
				if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
					name = tag
				}
				return p.under(name)
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.String && !textOK(k.String()) {
				return &problem{text: k.String(), key: true}
			}
			if p := checkValue(it.Value(), depth+1); p != nil {
				return p.under(k.String())
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // bytes, not text
		}
		for i := range v.Len() {
			if p := checkValue(v.Index(i), depth+1); p != nil {
				p.segs = append(p.segs, fmt.Sprintf("[%d]", i))
				return p
			}
		}
	}
	return nil
}

// quoteKey quotes a map key for a message, without the NUL or broken bytes it may hold.
func quoteKey(k string) string { return fmt.Sprintf("%+q", k) }

// Validate checks every text field of every record of the snapshot (and every org's sign-in
// rules, which a write refuses too), and says which record
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
		if err := o.SigninRules.Validate(); err != nil && len(bad) < 20 {
			bad = append(bad, fmt.Sprintf("org %+q: sign-in rules: %v", o.Name, err))
		}
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
	for _, n := range s.Notifications {
		check(fmt.Sprintf("notification %+q", n.ID), n)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: records no engine may store (fix them in the source first):\n  %s", ErrInvalid, strings.Join(bad, "\n  "))
	}
	return nil
}
