package metrics_test

import (
	"context"
	"database/sql/driver"
	"errors"
)

// nopConnector is a database/sql connector that never connects, enough for pool statistics.
type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("no database")
}
func (nopConnector) Driver() driver.Driver { return nopDriver{} }

type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) { return nil, errors.New("no database") }
