package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
)

// CreateDeviceCode implements store.DeviceCodes.
func (s *DB) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	if d.ID == "" || d.UserCode == "" {
		return fmt.Errorf("create device code: %w: no id or user code", store.ErrInvalid)
	}
	err := s.update(ctx, func(txn *bdg.Txn) error {
		for _, k := range []string{pDevice + d.ID, pDeviceUser + d.UserCode} {
			if ok, err := exists(txn, k); err != nil {
				return err
			} else if ok {
				return store.ErrConflict
			}
		}
		if err := putJSON(txn, pDevice+d.ID, d); err != nil {
			return err
		}
		return txn.Set([]byte(pDeviceUser+d.UserCode), []byte(d.ID))
	})
	if err != nil {
		return fmt.Errorf("create device code: %w", err)
	}
	return nil
}

// GetDeviceCodeByUserCode implements store.DeviceCodes.
func (s *DB) GetDeviceCodeByUserCode(_ context.Context, userCode string) (store.DeviceCode, error) {
	var d store.DeviceCode
	err := s.view(func(txn *bdg.Txn) error {
		id, err := getString(txn, pDeviceUser+userCode)
		if err != nil {
			return err
		}
		return getJSON(txn, pDevice+id, &d)
	})
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("device code: %w", err)
	}
	return d, nil
}

// UpdateDeviceCode implements store.DeviceCodes. Badger's transactions are optimistic: two
// updates of one request at once conflict, and the retry runs fn again on what the other wrote.
func (s *DB) UpdateDeviceCode(ctx context.Context, id string, fn func(*store.DeviceCode) error) (store.DeviceCode, error) {
	var d store.DeviceCode
	var fnErr error
	err := s.update(ctx, func(txn *bdg.Txn) error {
		d, fnErr = store.DeviceCode{}, nil
		if err := getJSON(txn, pDevice+id, &d); err != nil {
			return err
		}
		if fnErr = fn(&d); fnErr != nil {
			return fnErr
		}
		return putJSON(txn, pDevice+id, d)
	})
	if fnErr != nil {
		return store.DeviceCode{}, fnErr
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("update device code: %w", err)
	}
	return d, nil
}

// DeleteDeviceCodes implements store.DeviceCodes.
func (s *DB) DeleteDeviceCodes(ctx context.Context, before time.Time) ([]store.DeviceCode, error) {
	var gone []store.DeviceCode
	err := s.update(ctx, func(txn *bdg.Txn) error {
		gone = gone[:0]
		if err := scan(txn, pDevice, func(_, v []byte) error {
			var d store.DeviceCode
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if d.ExpiresAt.Before(before) {
				gone = append(gone, d)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, d := range gone {
			if err := txn.Delete([]byte(pDevice + d.ID)); err != nil {
				return err
			}
			if err := txn.Delete([]byte(pDeviceUser + d.UserCode)); err != nil && !errors.Is(err, bdg.ErrKeyNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete expired device codes: %w", err)
	}
	return gone, nil
}
