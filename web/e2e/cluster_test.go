package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/testmedia"
	"github.com/hlsd/hlsd/web/e2e"
)

// TestCluster runs hlsd as several nodes the way deploy/ describes: three
// hlsd processes on loopback behind Debian's HAProxy with the configuration
// of deploy/haproxy/haproxy.cfg, and nginx with deploy/nginx/cache.conf as
// the CDN in front. It checks that a file's work happens on one node, that
// players go on when that node is SIGKILLed and the segments of both nodes
// join, that only the dead node's files move and move back, and that a
// second player's segments come from the cache alone.
//
// HAProxy and nginx are installed with apt-get when missing and the test
// runs as root; otherwise it skips, saying what to install.
func TestCluster(t *testing.T) {
	ctx, cancel := needBrowser(t)
	defer cancel()
	haproxy := needTool(t, "haproxy", "haproxy")
	nginx := needTool(t, "nginx", "nginx-light")

	dir := t.TempDir()
	bin := filepath.Join(dir, "hlsd")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/hlsd/hlsd/cmd/hlsd").CombinedOutput(); err != nil {
		t.Fatalf("building hlsd: %v\n%s", err, out)
	}
	media := filepath.Join(dir, "media")
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	// long.mp4 is the one watched across the node loss: 32 minutes, so
	// that the player is always fetching.
	const watched = "long.mp4"
	files, err := e2e.LibraryOf(ctx, media, "h264.mp4", "hevc.mkv", "vp9.webm", "longgop.mp4", "twoaudio.mkv", "gop20.mp4", watched)
	if err != nil {
		t.Fatal(err)
	}

	var nodes []*node
	for i := 1; i <= 3; i++ {
		n := &node{t: t, name: fmt.Sprintf("hlsd%d", i), bin: bin, media: media, cache: filepath.Join(dir, fmt.Sprintf("cache%d", i)), port: freePort(t)}
		n.start(ctx)
		nodes = append(nodes, n)
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	lbPort := freePort(t)
	lb := startProcess(t, ctx, "haproxy", filepath.Join(dir, "haproxy.log"), haproxy, "-W", "-db", "-f",
		writeHAProxy(t, dir, lbPort, nodes))
	defer lb.stop()
	lbURL := fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	waitOK(t, lbURL+"/readyz", 20*time.Second)

	owners := func() map[string]string {
		out := map[string]string{}
		for _, f := range files {
			_, _, hdr := get(t, lbURL+"/videos/"+f.ID+"/info")
			out[f.Name] = hdr.Get("X-Hlsd-Node")
		}
		return out
	}
	before := owners()
	t.Logf("owners: %v", before)

	t.Run("routing", func(t *testing.T) {
		// Three files on as many nodes as the ring allows, two players each.
		var played []e2e.File
		taken := map[string]bool{}
		for _, f := range files {
			if f.Name != watched && !taken[before[f.Name]] && len(played) < 3 {
				played, taken[before[f.Name]] = append(played, f), true
			}
		}
		for _, f := range files {
			if len(played) < 3 && f.Name != watched && !containsFile(played, f) {
				played = append(played, f)
			}
		}
		starts0 := map[string]float64{}
		for _, n := range nodes {
			starts0[n.name] = n.metric(t, "hlsd_encoder_starts_total", "")
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		servedBy := map[string]map[string]int{} // file -> node -> responses
		for i := 0; i < 6; i++ {
			f := played[i%len(played)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, err := playSegments(lbURL, f.ID, fmt.Sprintf("router-%d", i), 5)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("player %d on %s: %v", i, f.Name, err)
				}
				if servedBy[f.Name] == nil {
					servedBy[f.Name] = map[string]int{}
				}
				for n, c := range seen {
					servedBy[f.Name][n] += c
				}
			}()
		}
		wg.Wait()
		owning := map[string]bool{}
		for _, f := range played {
			t.Logf("%s: answered by %v", f.Name, servedBy[f.Name])
			if len(servedBy[f.Name]) != 1 || servedBy[f.Name][before[f.Name]] == 0 {
				t.Errorf("%s: answered by %v, want only its owner %s", f.Name, servedBy[f.Name], before[f.Name])
			}
			owning[before[f.Name]] = true
		}
		// Each node's ffmpeg runs, from its own /metrics: the owners ran
		// encoders, the others none (requests reach a node only through
		// the ring, and every run follows a request).
		for _, n := range nodes {
			runs := n.metric(t, "hlsd_encoder_starts_total", "") - starts0[n.name]
			t.Logf("%s: %.0f ffmpeg runs, owns a played file: %v", n.name, runs, owning[n.name])
			if owning[n.name] != (runs > 0) {
				t.Errorf("%s: %.0f ffmpeg runs; owns a played file: %v", n.name, runs, owning[n.name])
			}
		}
	})

	t.Run("node loss", func(t *testing.T) {
		victim := nodeNamed(nodes, before[watched])
		id := e2e.ID(watched)
		rung := lbURL + "/videos/" + id + "/video/0/360p/"
		hook := make(chan struct{}, 1)
		done := make(chan struct{})
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case hook <- struct{}{}:
			default:
			}
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go hs.Serve(ln)
		defer hs.Close()

		// The hook is called as the player starts loading segment 2, a few
		// seconds in, with little buffered: this test takes segments 0 and
		// 1 from the owner, then kills it while that load is in flight.
		// The segments after them are fetched once the watch is over, from
		// the node the player moved to, so that this test's own requests do
		// not compete with the player's for the surviving nodes' CPU.
		var initA []byte
		var segs [][]byte
		go func() {
			defer close(done)
			select {
			case <-hook:
			case <-ctx.Done():
				return
			}
			initA, _ = mustGet(t, rung+"init.mp4")
			for n := 0; n <= 1; n++ {
				b, by := mustGet(t, rung+fmt.Sprintf("segment-%d.m4s", n))
				if by != victim.name {
					t.Errorf("segment %d before the loss from %s, want %s", n, by, victim.name)
				}
				segs = append(segs, b)
			}
			// A request in flight when the node dies: segment 60, which no
			// head is near, so that the owner is still encoding it. HAProxy
			// sends it again to the next node when no byte of the answer
			// came back (retry-on empty-response); a player retries itself
			// when the answer was cut short.
			inflight := make(chan string, 1)
			go func() {
				for try := 1; ; try++ {
					_, hdr, err := fetch(rung + "segment-60.m4s")
					if err == nil || try == 2 {
						inflight <- fmt.Sprintf("try %d: from %s, error %v", try, hdr.Get("X-Hlsd-Node"), err)
						return
					}
				}
			}()
			time.Sleep(300 * time.Millisecond)
			victim.kill()
			t.Logf("killed %s (pid %d), the owner of %s", victim.name, victim.pid, watched)
			got := <-inflight
			t.Logf("segment 60, asked for 300 ms before the kill: %s", got)
			if !strings.HasSuffix(got, "error <nil>") || strings.Contains(got, victim.name) {
				t.Errorf("segment 60, asked for before the kill: %s", got)
			}
		}()

		results, err := e2e.Run(ctx, e2e.Config{
			Base: lbURL, Artifacts: artifactsDir(t), Debug: os.Getenv("HLSD_E2E_DEBUG") == "1",
			Files: []e2e.File{{Name: watched, ID: id}},
			Watch: &e2e.Watch{Seconds: 30, Height: 360, HookFrag: 2, Hook: fmt.Sprintf("http://%s/", ln.Addr())},
		})
		if err != nil {
			t.Fatal(err)
		}
		<-done
		r := results[0]
		for _, s := range r.Steps {
			t.Logf("%s %.0f ms", s.Step, s.Ms)
		}
		t.Logf("played %.1f s, %d frames, longest stall %.2f s", r.Played, r.Frames, r.LongestStall)
		for _, p := range r.Problems() {
			t.Error(p)
		}
		if r.LongestStall > 3 {
			t.Errorf("playback stood still for %.2f s across the node loss, want at most 3 s", r.LongestStall)
		}
		if r.Played < 25 || float64(r.Frames) < (r.Played-1)*24*0.9 {
			t.Errorf("played %.1f s with %d frames in a 30 s watch", r.Played, r.Frames)
		}
		if len(segs) == 2 {
			initB, nodeB := mustGet(t, rung+"init.mp4")
			if !bytes.Equal(initA, initB) {
				t.Errorf("init.mp4 of %s (%d B) and %s (%d B) differ", victim.name, len(initA), nodeB, len(initB))
			}
			joined := append(slices.Clone(initA), bytes.Join(segs, nil)...)
			for n := 2; n <= 3; n++ {
				b, by := mustGet(t, rung+fmt.Sprintf("segment-%d.m4s", n))
				if by == victim.name || by == "" {
					t.Errorf("segment %d after the loss from %q", n, by)
				}
				joined = append(joined, b...)
			}
			t.Logf("segments 0-1 from %s, 2-3 from %s; their init segments are the same bytes: %v", victim.name, nodeB, bytes.Equal(initA, initB))
			checkJoined(t, ctx, joined)
		}

		after := owners()
		for name, was := range before {
			switch {
			case was == victim.name && (after[name] == victim.name || after[name] == ""):
				t.Errorf("%s: still on %q after its node died", name, after[name])
			case was != victim.name && after[name] != was:
				t.Errorf("%s: moved from %s to %s, though its node is up", name, was, after[name])
			}
		}
		t.Logf("owners with %s down: %v", victim.name, after)

		victim.start(ctx)
		var back map[string]string
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			back = owners()
			for name, was := range before {
				if was != victim.name && back[name] != was {
					t.Errorf("%s: moved from %s to %s while %s came back", name, was, back[name], victim.name)
				}
			}
			if fmt.Sprint(back) == fmt.Sprint(before) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if fmt.Sprint(back) != fmt.Sprint(before) {
			t.Errorf("after %s came back, owners %v, want %v", victim.name, back, before)
		}
	})

	t.Run("cdn", func(t *testing.T) {
		cdnPort := freePort(t)
		cdn := startProcess(t, ctx, "nginx", filepath.Join(dir, "nginx.log"), nginx, "-e", "stderr", "-c", writeNginx(t, dir, cdnPort, lbPort))
		defer cdn.stop()
		cdnURL := fmt.Sprintf("http://127.0.0.1:%d", cdnPort)
		waitOK(t, cdnURL+"/readyz", 10*time.Second)
		f := files[0]
		if _, err := playSegments(cdnURL, f.ID, "cdn-1", 1000); err != nil {
			t.Fatalf("first player: %v", err)
		}
		variantRoute := `route="/videos/{id}/{kind}/{track}/{quality}/{file}"`
		sum := func() (total float64) {
			for _, n := range nodes {
				total += n.metric(t, "hlsd_http_requests_total", variantRoute)
			}
			return total
		}
		before := sum()
		hits, misses, err := playThrough(cdnURL, f.ID, "cdn-2")
		if err != nil {
			t.Fatalf("second player: %v", err)
		}
		// The second player's media playlist carries its own clientId, so
		// that one request reaches hlsd; its init and segments must not.
		reached := sum() - before
		t.Logf("second player: %d segments and init from the cache, %v missed; %.0f requests reached hlsd", hits, misses, reached)
		if len(misses) > 0 || hits == 0 || reached != 1 {
			t.Errorf("second player: %d cache hits, misses %v, %.0f variant requests reached hlsd (want 1: its media playlist)", hits, misses, reached)
		}
	})
}

// node is one hlsd process of the cluster.
type node struct {
	t                       *testing.T
	name, bin, media, cache string
	port, pid               int
	p                       *process
}

func (n *node) url() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

func (n *node) start(ctx context.Context) {
	n.t.Helper()
	n.p = startProcess(n.t, ctx, n.name, n.cache+".log", n.bin,
		"--media", n.media, "--cache", n.cache, "--listen", fmt.Sprintf("127.0.0.1:%d", n.port),
		"--node-name", n.name, "--max-encoders", "2", "--trickplay-interval", "0")
	n.pid = n.p.cmd.Process.Pid
	waitOK(n.t, n.url()+"/readyz", 20*time.Second)
}

// kill is a crash: SIGKILL, no drain, no cleanup.
func (n *node) kill() { n.p.stop() }
func (n *node) stop() {
	if n.p != nil {
		n.p.stop()
	}
}

// metric sums the samples of name whose labels contain match.
func (n *node) metric(t *testing.T, name, match string) float64 {
	status, body, _ := get(t, n.url()+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("%s /metrics: %d", n.name, status)
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

func nodeNamed(nodes []*node, name string) *node {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	panic("no node " + name)
}

// process is a child of the test in its own process group, killed with
// SIGKILL as a group when stopped.
type process struct {
	cmd  *exec.Cmd
	once sync.Once
}

func startProcess(t *testing.T, ctx context.Context, what, logFile, bin string, args ...string) *process {
	t.Helper()
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() {
		p.stop()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s's log, last lines:\n%s", what, tailLines(string(b), 30))
		}
	})
	return p
}

func (p *process) stop() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Wait()
	})
}

// needTool finds bin, installing Debian's pkg when it is missing and the
// test runs as root; it skips the test when neither works.
func needTool(t *testing.T, bin, pkg string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/"} {
		if p, err := exec.LookPath(dir + bin); err == nil {
			return p
		}
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s is missing and the test is not root: apt-get install %s", bin, pkg)
	}
	out, err := exec.Command("sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "+pkg).CombinedOutput()
	if err != nil {
		t.Skipf("%s is missing and apt-get install %s failed: %v\n%s", bin, pkg, err, tailLines(string(out), 5))
	}
	p, err := exec.LookPath("/usr/sbin/" + bin)
	if err != nil {
		t.Skipf("apt-get installed %s, but %s is not in /usr/sbin", pkg, bin)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitOK(t *testing.T, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering 200 after %s: %v", url, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeHAProxy is deploy/haproxy/haproxy.cfg with this test's addresses.
func writeHAProxy(t *testing.T, dir string, port int, nodes []*node) string {
	b, err := os.ReadFile(filepath.Join(e2e.Dir(), "../../deploy/haproxy/haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?m)^\s*bind :8080$`).ReplaceAllString(string(b), fmt.Sprintf("    bind 127.0.0.1:%d", port))
	var servers []string
	for _, n := range nodes {
		servers = append(servers, fmt.Sprintf("    server %s 127.0.0.1:%d", n.name, n.port))
	}
	cfg = regexp.MustCompile(`(?m)(^\s*server hlsd\d .*\n)+`).ReplaceAllString(cfg, strings.Join(servers, "\n")+"\n")
	if !strings.Contains(cfg, fmt.Sprintf("127.0.0.1:%d", port)) || !strings.Contains(cfg, servers[0]) {
		t.Fatalf("deploy/haproxy/haproxy.cfg changed shape: the test could not rewrite its bind and server lines")
	}
	p := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeNginx is deploy/nginx/cache.conf with this test's addresses, in a
// main configuration of its own.
func writeNginx(t *testing.T, dir string, port, origin int) string {
	b, err := os.ReadFile(filepath.Join(e2e.Dir(), "../../deploy/nginx/cache.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "nginx-cache")
	conf := string(b)
	for _, r := range []struct{ re, to string }{
		{`proxy_cache_path /var/cache/nginx/hlsd `, "proxy_cache_path " + cache + " "},
		{`server 127\.0\.0\.1:8080;`, fmt.Sprintf("server 127.0.0.1:%d;", origin)},
		{`listen 8081;`, fmt.Sprintf("listen 127.0.0.1:%d;", port)},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(conf) {
			t.Fatalf("deploy/nginx/cache.conf changed shape: no %q to rewrite", r.re)
		}
		conf = re.ReplaceAllString(conf, r.to)
	}
	site := filepath.Join(dir, "cache.conf")
	if err := os.WriteFile(site, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers write the cache in the test's own directory
	}
	main := fmt.Sprintf("%s\ndaemon off;\nworker_processes 1;\npid %s;\nerror_log stderr warn;\nevents {}\nhttp {\n"+
		"access_log off;\nclient_body_temp_path %s;\nproxy_temp_path %s;\ninclude %s;\n}\n",
		user, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-body"), filepath.Join(dir, "nginx-proxy"), site)
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b, resp.Header
}

// mustGet returns the body and the node that answered.
func mustGet(t *testing.T, url string) ([]byte, string) {
	status, b, hdr := get(t, url)
	if status != http.StatusOK {
		t.Errorf("GET %s: %d %s", url, status, b)
	}
	return b, hdr.Get("X-Hlsd-Node")
}

// lowestRung reads base's master as client and returns the URL of its
// smallest video rung's media playlist.
func lowestRung(base, id, client string) (string, error) {
	prefix := base + "/videos/" + id + "/"
	b, _, err := fetch(prefix + "master.m3u8?clientId=" + client)
	if err != nil {
		return "", err
	}
	best, bestBW := "", 0
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "#EXT-X-STREAM-INF:") || i+1 >= len(lines) {
			continue
		}
		m := regexp.MustCompile(`BANDWIDTH=(\d+)`).FindStringSubmatch(l)
		bw, _ := strconv.Atoi(m[1])
		if best == "" || bw < bestBW {
			best, bestBW = lines[i+1], bw
		}
	}
	if best == "" {
		return "", fmt.Errorf("master lists no variant:\n%s", b)
	}
	return prefix + best, nil
}

// fetch GETs url and returns its body and the node that answered; a status
// other than 200 is an error.
func fetch(url string) ([]byte, http.Header, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, resp.Header, err
}

// mediaURIs are the init and segment URLs of a media playlist, resolved.
func mediaURIs(playlist string) ([]string, error) {
	b, _, err := fetch(playlist)
	if err != nil {
		return nil, err
	}
	dir := playlist[:strings.LastIndexByte(playlist[:strings.IndexByte(playlist+"?", '?')], '/')+1]
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if _, after, ok := strings.Cut(l, `#EXT-X-MAP:URI="`); ok {
			out = append(out, dir+after[:strings.IndexByte(after, '"')])
		} else if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, dir+l)
		}
	}
	return out, nil
}

// playSegments plays the lowest rung of a file as a player would, without
// decoding: master, media playlist, init, then up to n segments, and
// counts which node answered each request.
func playSegments(base, id, client string, n int) (map[string]int, error) {
	seen := map[string]int{}
	pl, err := lowestRung(base, id, client)
	if err != nil {
		return nil, err
	}
	uris, err := mediaURIs(pl)
	if err != nil {
		return nil, err
	}
	for i, u := range uris {
		if i > n {
			break
		}
		_, hdr, err := fetch(u)
		if err != nil {
			return seen, err
		}
		seen[hdr.Get("X-Hlsd-Node")]++
	}
	return seen, nil
}

// playThrough plays every segment of the lowest rung through a cache and
// counts the hits; misses lists the URLs that were not.
func playThrough(base, id, client string) (hits int, misses []string, err error) {
	pl, err := lowestRung(base, id, client)
	if err != nil {
		return 0, nil, err
	}
	uris, err := mediaURIs(pl)
	if err != nil {
		return 0, nil, err
	}
	for _, u := range uris {
		_, hdr, err := fetch(u)
		if err != nil {
			return hits, misses, err
		}
		if hdr.Get("X-Cache-Status") == "HIT" {
			hits++
		} else {
			misses = append(misses, u+": "+hdr.Get("X-Cache-Status"))
		}
	}
	return hits, misses, nil
}

// checkJoined decodes an init and the segments after it as one stream:
// no decoder error, the first frame a keyframe, and frame times evenly
// spaced with no hole where one node's segments end and the other's begin.
func checkJoined(t *testing.T, ctx context.Context, stream []byte) {
	t.Helper()
	times, firstKey, err := testmedia.Frames(ctx, stream)
	if err != nil {
		t.Fatalf("the segments of both nodes: %v", err)
	}
	if len(times) < 2 || !firstKey {
		t.Fatalf("joined stream: %d frames, first a keyframe: %v", len(times), firstKey)
	}
	for _, u := range testmedia.Uneven(times) {
		t.Errorf("joined stream: %s", u)
	}
	t.Logf("segments of both nodes: %d frames from %.3f to %.3f s decode as one stream", len(times), times[0], times[len(times)-1])
}

func containsFile(fs []e2e.File, f e2e.File) bool {
	for _, g := range fs {
		if g.ID == f.ID {
			return true
		}
	}
	return false
}
