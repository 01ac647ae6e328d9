package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

func testDeviceCodes(t *testing.T, su suite) {
	ctx := context.Background()
	s := su.fresh(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	d := store.DeviceCode{ID: "dev-a", UserCode: "user-a", ClientID: "rillctl", Host: "laptop", IP: "127.0.0.1",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DevicePending, SealKey: []byte{1, 2, 3}}
	if err := s.CreateDeviceCode(ctx, d); err != nil {
		t.Fatal(err)
	}
	for name, dup := range map[string]store.DeviceCode{
		"same id":        {ID: "dev-a", UserCode: "user-b", ExpiresAt: now},
		"same user code": {ID: "dev-b", UserCode: "user-a", ExpiresAt: now},
	} {
		if err := s.CreateDeviceCode(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("create with the %s: %v, want ErrConflict", name, err)
		}
	}
	if err := s.CreateDeviceCode(ctx, store.DeviceCode{ID: "", UserCode: "x"}); err == nil {
		t.Fatal("a device code without an id was stored")
	}
	got, err := s.GetDeviceCodeByUserCode(ctx, "user-a")
	if err != nil || got.ID != "dev-a" || got.Host != "laptop" || got.Interval != 5*time.Second || !got.ExpiresAt.Equal(d.ExpiresAt) || string(got.SealKey) != "\x01\x02\x03" {
		t.Fatalf("get by user code: %+v, %v", got, err)
	}
	if _, err := s.GetDeviceCodeByUserCode(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user code: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateDeviceCode(ctx, "nobody", func(*store.DeviceCode) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v, want ErrNotFound", err)
	}
	// An error from fn writes nothing and comes back as it is.
	refuse := errors.New("refused")
	if _, err := s.UpdateDeviceCode(ctx, "dev-a", func(d *store.DeviceCode) error { d.State = store.DeviceDenied; return refuse }); err != refuse {
		t.Fatalf("update refused by fn: %v", err)
	}
	if got, _ := s.GetDeviceCodeByUserCode(ctx, "user-a"); got.State != store.DevicePending {
		t.Fatalf("a refused update was written: %+v", got)
	}

	// Concurrent updates are serialized: exactly one of many redeems moves approved to redeemed.
	if _, err := s.UpdateDeviceCode(ctx, "dev-a", func(d *store.DeviceCode) error {
		d.State, d.Sealed, d.UserID = store.DeviceApproved, []byte("sealed"), "u1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			_, err := s.UpdateDeviceCode(ctx, "dev-a", func(d *store.DeviceCode) error {
				if d.State != store.DeviceApproved {
					return refuse
				}
				d.State, d.Sealed = store.DeviceRedeemed, nil
				return nil
			})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if err != refuse {
				t.Errorf("redeem: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d concurrent redeems succeeded, want exactly 1", won)
	}

	// The sweep deletes what expired, record and index, and returns it.
	later := store.DeviceCode{ID: "dev-c", UserCode: "user-c", CreatedAt: now, ExpiresAt: now.Add(time.Hour), State: store.DevicePending}
	if err := s.CreateDeviceCode(ctx, later); err != nil {
		t.Fatal(err)
	}
	gone, err := s.DeleteDeviceCodes(ctx, now.Add(30*time.Minute))
	if err != nil || len(gone) != 1 || gone[0].ID != "dev-a" || gone[0].State != store.DeviceRedeemed {
		t.Fatalf("sweep: %+v, %v; want dev-a only", gone, err)
	}
	if _, err := s.GetDeviceCodeByUserCode(ctx, "user-a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("swept code still found: %v", err)
	}
	if err := s.CreateDeviceCode(ctx, store.DeviceCode{ID: "dev-d", UserCode: "user-a", ExpiresAt: now}); err != nil {
		t.Fatalf("a swept user code cannot be drawn again: %v", err)
	}
	if got, err := s.GetDeviceCodeByUserCode(ctx, "user-c"); err != nil || got.ID != "dev-c" {
		t.Fatalf("unexpired code: %+v, %v", got, err)
	}
}
