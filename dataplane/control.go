package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ControlSocket is the name of the status socket inside the state dir.
const ControlSocket = "vcped.sock"

// ControlServer serves the status JSON on a unix socket (mode 0600): each
// connection gets one document and is closed.
type ControlServer struct {
	ln   net.Listener
	path string
	done chan struct{}
}

// ListenControl creates the socket at path (replacing a stale one) and
// serves status() on it until Close.
func ListenControl(path string, status func() Status, log *slog.Logger) (*ControlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another vcped running on this state dir?", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &ControlServer{ln: ln, path: path, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					log.Error("control socket accept", "err", err)
				}
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_ = json.NewEncoder(c).Encode(status())
			c.Close()
		}
	}()
	return s, nil
}

// Close stops serving and removes the socket.
func (s *ControlServer) Close() error {
	err := s.ln.Close()
	<-s.done
	_ = os.Remove(s.path)
	return err
}

// ReadStatus asks the daemon behind the control socket for its status.
func ReadStatus(path string) (Status, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return Status{}, fmt.Errorf("connect to control socket %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var st Status
	if err := json.NewDecoder(c).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("read status from %s: %w", path, err)
	}
	return st, nil
}
