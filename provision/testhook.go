package provision

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TestPauseEnv names the environment variable of the fault-injection
// tests: when it names a pause point (for example "before:apply",
// "register:answered"), the install stops there, says so on standard
// error ("vcpe: paused at POINT") and waits to be killed. Several points
// may be given, comma separated. It is not for production use; unset, it
// costs one lookup.
const TestPauseEnv = "VCPE_TEST_PAUSE"

var pausePoints = sync.OnceValue(func() map[string]bool {
	v := os.Getenv(TestPauseEnv)
	if v == "" {
		return nil
	}
	m := map[string]bool{}
	for _, p := range strings.Split(v, ",") {
		m[strings.TrimSpace(p)] = true
	}
	return m
})

func testPause(point string) {
	if !pausePoints()[point] {
		return
	}
	fmt.Fprintf(os.Stderr, "vcpe: paused at %s\n", point)
	for {
		time.Sleep(time.Hour)
	}
}
