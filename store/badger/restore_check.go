package badger

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// checkRecord checks one key and value of a backup as the store will read them: every record
// decodes, holds only text every engine can store (store.CheckFields), and sits under the key
// its own id or name gives; index entries and marks have their shape. A key of no kind this
// store writes is refused too.
func checkRecord(key, val []byte) error {
	k := string(key)
	record := func(prefix, kind string, v any, id func() string) error {
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("%s %s: does not decode: %w", kind, k, err)
		}
		if err := store.CheckFields(kind+" "+k, v); err != nil {
			return err
		}
		if got := prefix + id(); got != k {
			return fmt.Errorf("%s %s: its record says %s", kind, k, got)
		}
		return nil
	}
	text := func(kind string) error {
		if err := store.CheckText(kind+" key", k); err != nil {
			return err
		}
		return store.CheckText(kind+" "+k, string(val))
	}
	switch {
	case strings.HasPrefix(k, pOrg):
		var o store.Org
		return record(pOrg, "org", &o, func() string { return o.Name })
	case strings.HasPrefix(k, pProject):
		var p store.Project
		return record(pProject, "project", &p, func() string { return p.Org + "/" + p.Name })
	case strings.HasPrefix(k, pUser):
		var u store.User
		return record(pUser, "user", &u, func() string { return u.ID })
	case strings.HasPrefix(k, pService):
		var sv store.Service
		return record(pService, "service", &sv, func() string { return sv.ID })
	case strings.HasPrefix(k, pToken):
		var t store.Token
		if err := decodeToken(val, &t); err != nil {
			return fmt.Errorf("token %s: %w", k, err)
		}
		if err := store.CheckFields("token "+k, t); err != nil {
			return err
		}
		if got := pToken + t.ID.String(); got != k {
			return fmt.Errorf("token %s: its record says %s", k, got)
		}
		if t.Kind != token.User && t.Kind != token.Service && t.Kind != token.Magic {
			return fmt.Errorf("token %s: kind %q is none of %s, %s, %s", k, t.Kind, token.User, token.Service, token.Magic)
		}
		if (t.Kind == token.Magic) != (t.Magic != nil) {
			return fmt.Errorf("token %s: a magic token holds its grant and no other token does", k)
		}
		return nil
	case strings.HasPrefix(k, pKey):
		var sk store.SigningKey
		return record(pKey, "signing key", &sk, func() string { return sk.KID })
	case strings.HasPrefix(k, pAudit):
		var e store.AuditEvent
		if len(k) != len(pAudit)+12 {
			return fmt.Errorf("audit event key %q: not %s<time><seq>", key, pAudit)
		}
		if err := json.Unmarshal(val, &e); err != nil {
			return fmt.Errorf("audit event %q: does not decode: %w", key, err)
		}
		return store.CheckFields(fmt.Sprintf("audit event %q", key), e)
	case strings.HasPrefix(k, pUserMail), strings.HasPrefix(k, pSvcName):
		return text("index entry")
	case strings.HasPrefix(k, pTokOwner):
		if _, err := token.ParseID(k[strings.LastIndexByte(k, '/')+1:]); err != nil {
			return fmt.Errorf("owner index entry %s: %w", k, err)
		}
		return store.CheckText("owner index key", k)
	case strings.HasPrefix(k, pRevoked):
		if _, err := token.ParseID(k[len(pRevoked):]); err != nil {
			return fmt.Errorf("tombstone %s: %w", k, err)
		}
		return text("tombstone")
	case strings.HasPrefix(k, pImported):
		_, err := decodeImported(key, val)
		return err
	case strings.HasPrefix(k, pPurge):
		return store.CheckText("purge key", k) // the value is kind NUL why, by design
	case strings.HasPrefix(k, pChange):
		var c store.Change
		if len(k) != len(pChange)+8 {
			return fmt.Errorf("change key %q: not %s<seq>", key, pChange)
		}
		if err := json.Unmarshal(val, &c); err != nil {
			return fmt.Errorf("change %d: does not decode: %w", binary.BigEndian.Uint64(key[len(pChange):]), err)
		}
		return nil
	case strings.HasPrefix(k, pOutbox):
		var n store.Notification
		return record(pOutbox, "notification", &n, func() string { return n.ID })
	case k == kPruned:
		if len(val) != 8 {
			return fmt.Errorf("%s: not a sequence", k)
		}
		return nil
	case k == kBoot, strings.HasPrefix(k, pCount), strings.HasPrefix(k, "meta/"):
		return nil
	}
	return fmt.Errorf("key %q: of no kind a rill-authd store writes", key)
}
