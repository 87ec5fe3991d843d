package namespace

import (
	"os/exec"
	"strings"
	"testing"
)

func TestNamespacesAreIsolatedAndRemoved(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		a, b := New(t), New(t)
		name = a.Name
		Veth(t, a, "va", "198.18.250.1/30", b, "vb", "198.18.250.2/30")
		out := a.Run("ping", "-c", "1", "-W", "2", "198.18.250.2")
		if !strings.Contains(out, "1 received") {
			t.Fatalf("ping across the veth: %s", out)
		}
		if out := b.Run("ip", "-o", "addr", "show", "dev", "vb"); !strings.Contains(out, "198.18.250.2/30") {
			t.Fatalf("address not in namespace b: %s", out)
		}
	})
	out, _ := exec.Command("ip", "netns", "list").Output()
	if name == "" || strings.Contains(string(out), name) {
		t.Fatalf("namespace %q still listed after its test ended: %s", name, out)
	}
}
