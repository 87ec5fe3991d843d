package store

import (
	"errors"
	"strings"
	"syscall"
)

// Unavailable tells whether err is the storage's state rather than a bug
// (a full disk, a read-only file system or database, a lock held too
// long, a database that does not answer), with the cause and the fix for
// an administrator. Such a request can be retried once the fix is made;
// it was not refused.
func Unavailable(err error) (cause, fix string, ok bool) {
	if err == nil {
		return "", "", false
	}
	const (
		full     = "the controller's store is full"
		fullFix  = "free space on the file system of the controller's state dir (or its database), then retry; nothing was changed"
		ro       = "the controller's store is read-only"
		roFix    = "remount the state dir's file system read-write (or fix the database's permissions, or point the controller at the primary), then retry; nothing was changed"
		locked   = "the controller's store is locked by another writer"
		lockFix  = "retry in a few seconds; if it persists, find the other process using the database (another vcpe-hub on the same state dir?)"
		down     = "the controller's database does not answer"
		downFix  = "check the database server and the controller's connection string, then retry"
		ioErr    = "the controller's store had an I/O error"
		ioErrFix = "check the disk of the controller's state dir (dmesg, df -h), then retry"
	)
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return full + ": " + err.Error(), fullFix, true
	case errors.Is(err, syscall.EROFS):
		return ro + ": " + err.Error(), roFix, true
	}
	var sqlite interface{ Code() int }
	if errors.As(err, &sqlite) {
		switch sqlite.Code() & 0xff {
		case 13: // SQLITE_FULL
			return full + ": " + err.Error(), fullFix, true
		case 8: // SQLITE_READONLY
			return ro + ": " + err.Error(), roFix, true
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return locked + ": " + err.Error(), lockFix, true
		case 10, 14: // SQLITE_IOERR, SQLITE_CANTOPEN
			return ioErr + ": " + err.Error(), ioErrFix, true
		}
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch st := pg.SQLState(); {
		case st == "53100":
			return full + ": " + err.Error(), fullFix, true
		case st == "25006":
			return ro + ": " + err.Error(), roFix, true
		case st == "55P03" || st == "40P01" || st == "40001":
			return locked + ": " + err.Error(), lockFix, true
		case strings.HasPrefix(st, "08") || st == "57P01" || st == "57P03" || st == "53300":
			return down + ": " + err.Error(), downFix, true
		}
	}
	// Drivers that lose the typed error on the way still say it.
	switch msg := err.Error(); {
	case strings.Contains(msg, "database or disk is full"), strings.Contains(msg, "no space left on device"):
		return full + ": " + msg, fullFix, true
	case strings.Contains(msg, "readonly database"), strings.Contains(msg, "read-only file system"):
		return ro + ": " + msg, roFix, true
	case strings.Contains(msg, "database is locked"):
		return locked + ": " + msg, lockFix, true
	}
	return "", "", false
}
