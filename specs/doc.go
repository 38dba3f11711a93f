// Package specs holds hilfarm's two HCL languages: farm.hcl (what is wired
// where) and test specs (what a firmware candidate must do on a board). It
// parses, validates and formats them and decodes them into plain Go values.
// It imports no other hilfarm package.
//
// Decoded values are immutable once returned and safe to share between
// goroutines; Expr values may be evaluated concurrently.
package specs
