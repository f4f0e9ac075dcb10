//go:build unix

package main

import "syscall"

// restrictUmask makes every file and directory the process creates from now on private to its user
// (umask 077).
func restrictUmask() { syscall.Umask(0o077) }
