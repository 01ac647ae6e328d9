package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rill-authd/rill-authd/store"
)

// CreateDeviceCode implements store.DeviceCodes.
func (s *DB) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	if d.ID == "" || d.UserCode == "" {
		return fmt.Errorf("create device code: %w: no id or user code", store.ErrInvalid)
	}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("create device code: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO device_codes (id, user_code, expires_at, body) VALUES ($1, $2, $3, $4)`,
		d.ID, d.UserCode, nanos(d.ExpiresAt), body)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("create device code: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create device code: %w", unavail(err))
	}
	return nil
}

// GetDeviceCodeByUserCode implements store.DeviceCodes.
func (s *DB) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	if err := s.closedErr(); err != nil {
		return store.DeviceCode{}, err
	}
	var body []byte
	err := s.pool.QueryRow(ctx, `SELECT body FROM device_codes WHERE user_code = $1`, userCode).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.DeviceCode{}, fmt.Errorf("device code: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("device code: %w", unavail(err))
	}
	var d store.DeviceCode
	if err := json.Unmarshal(body, &d); err != nil {
		return store.DeviceCode{}, fmt.Errorf("device code: %w", err)
	}
	return d, nil
}

// UpdateDeviceCode implements store.DeviceCodes: the row is locked (FOR UPDATE) from the read
// to the write, so two replicas updating one request take turns.
func (s *DB) UpdateDeviceCode(ctx context.Context, id string, fn func(*store.DeviceCode) error) (store.DeviceCode, error) {
	if err := s.closedErr(); err != nil {
		return store.DeviceCode{}, err
	}
	var d store.DeviceCode
	var fnErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var body []byte
		if err := tx.QueryRow(ctx, `SELECT body FROM device_codes WHERE id = $1 FOR UPDATE`, id).Scan(&body); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		d = store.DeviceCode{}
		if err := json.Unmarshal(body, &d); err != nil {
			return err
		}
		if fnErr = fn(&d); fnErr != nil {
			return fnErr
		}
		d.ID = id // fn cannot move the record
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE device_codes SET body = $2, expires_at = $3 WHERE id = $1`, id, b, nanos(d.ExpiresAt))
		return err
	})
	if fnErr != nil {
		return store.DeviceCode{}, fnErr
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("update device code: %w", unavail(err))
	}
	return d, nil
}

// DeleteDeviceCodes implements store.DeviceCodes.
func (s *DB) DeleteDeviceCodes(ctx context.Context, before time.Time) ([]store.DeviceCode, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `DELETE FROM device_codes WHERE expires_at < $1 RETURNING body`, nanos(before))
	if err != nil {
		return nil, fmt.Errorf("delete expired device codes: %w", unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DeviceCode, error) {
		var body []byte
		var d store.DeviceCode
		if err := r.Scan(&body); err != nil {
			return d, err
		}
		return d, json.Unmarshal(body, &d)
	})
	if err != nil {
		return nil, fmt.Errorf("delete expired device codes: %w", unavail(err))
	}
	return out, nil
}
