package child

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTailKeepsTheEnd(t *testing.T) {
	tail := &Tail{Max: 8}
	for _, s := range []string{"first line\n", "x", "the end"} {
		if n, err := tail.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tail.String(); got != "xthe end" {
		t.Errorf("kept %q, want %q", got, "xthe end")
	}
}

// The child reads the file it was given, whatever its path now names, and
// a canceled context kills its whole process group.
func TestCommand(t *testing.T) {
	path := t.TempDir() + "/media"
	if err := os.WriteFile(path, []byte("the checked file"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", path); err != nil {
		t.Fatal(err)
	}
	out, err := Command(context.Background(), f, "cat", Input).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "the checked file" {
		t.Errorf("the child read %q, want the file it was given, not what the path names now", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	// The shell's own child (sleep) is in the group too and must die with it.
	cmd := Command(ctx, nil, "sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	cancel()
	err = cmd.Wait()
	if d := time.Since(begin); d >= WaitDelay {
		t.Errorf("Wait took %v: the group was not killed", d)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait = %v, want killed", err)
	}
}
