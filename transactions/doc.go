// Package transactions signs transactions: a login ceremony whose challenge is bound to the exact data
// the user confirms (PSD2 dynamic linking), and the transaction record with its status.
package transactions
