// Package kubernetes checks hlsd's manifests offline, with Kubernetes' own
// API types: every document must decode strictly (no unknown field, no
// wrong type) into the object its kind names, and hold what hlsd needs
// (probes, limits, a read-only library, a cache volume, an encoder count
// that fits the CPU limit, HAProxy hashing as deploy/haproxy does). It is a
// module of its own so that hlsd does not depend on the Kubernetes API.
package kubernetes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// objects are the manifests of this directory, decoded.
type objects struct {
	statefulSets map[string]*appsv1.StatefulSet
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	claims       map[string]*corev1.PersistentVolumeClaim
	namespaces   map[string]*corev1.Namespace
}

func load(t *testing.T) objects {
	t.Helper()
	o := objects{map[string]*appsv1.StatefulSet{}, map[string]*appsv1.Deployment{}, map[string]*corev1.Service{},
		map[string]*corev1.ConfigMap{}, map[string]*corev1.PersistentVolumeClaim{}, map[string]*corev1.Namespace{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj interface{ GetName() string }
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			default:
				t.Fatalf("%s document %d: %s %s is not a kind this check knows", f, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, head.Kind, err)
				continue
			}
			name := obj.GetName()
			if name == "" {
				t.Errorf("%s document %d (%s) has no name", f, i, head.Kind)
			}
			switch v := obj.(type) {
			case *appsv1.StatefulSet:
				o.statefulSets[name] = v
			case *appsv1.Deployment:
				o.deployments[name] = v
			case *corev1.Service:
				o.services[name] = v
			case *corev1.ConfigMap:
				o.configMaps[name] = v
			case *corev1.PersistentVolumeClaim:
				o.claims[name] = v
			case *corev1.Namespace:
				o.namespaces[name] = v
			}
		}
	}
	return o
}

func stripComments(doc string) string {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")
}

// TestManifests decodes every manifest and checks the hlsd StatefulSet.
func TestManifests(t *testing.T) {
	o := load(t)
	sts := o.statefulSets["hlsd"]
	if sts == nil {
		t.Fatal("no StatefulSet hlsd")
	}
	checkNamespaces(t, o)
	pod := sts.Spec.Template
	if !matches(sts.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("StatefulSet hlsd: selector %v does not select its pods %v", sts.Spec.Selector.MatchLabels, pod.Labels)
	}
	headless := o.services[sts.Spec.ServiceName]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !matches(headless.Spec.Selector, pod.Labels) {
		t.Errorf("StatefulSet hlsd: serviceName %q is not a headless Service selecting its pods", sts.Spec.ServiceName)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("hlsd pod: %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	port := map[string]int32{}
	for _, p := range c.Ports {
		port[p.Name] = p.ContainerPort
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	checkEnvKnown(t, c.Env)
	if listen := env["HLSD_LISTEN"].Value; !strings.HasSuffix(listen, fmt.Sprintf(":%d", port["http"])) || strings.HasPrefix(listen, "127.") {
		t.Errorf("HLSD_LISTEN %q: want all interfaces on the http port %d", listen, port["http"])
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("hlsd container: want a probe of %s on the http port, got %+v", want, probe)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
			t.Errorf("hlsd container: %s needs a request and a limit", r)
		}
	}
	// The encoder count must fit the CPU limit: taken from it, or at most it.
	enc := env["HLSD_MAX_ENCODERS"]
	cpu := c.Resources.Limits.Cpu().Value()
	switch {
	case enc.ValueFrom != nil && enc.ValueFrom.ResourceFieldRef != nil:
		if ref := enc.ValueFrom.ResourceFieldRef; ref.Resource != "limits.cpu" || ref.Divisor.String() != "1" {
			t.Errorf("HLSD_MAX_ENCODERS from %s divided by %s, want limits.cpu by 1", ref.Resource, ref.Divisor.String())
		}
	case enc.Value != "":
		var n int64
		if _, err := fmt.Sscan(enc.Value, &n); err != nil || n < 1 || n > cpu {
			t.Errorf("HLSD_MAX_ENCODERS %q does not fit a CPU limit of %d", enc.Value, cpu)
		}
	default:
		t.Error("HLSD_MAX_ENCODERS is not set: hlsd would count the machine's cores, not the pod's CPU limit")
	}
	if ref := env["HLSD_NODE_NAME"].ValueFrom; ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != "metadata.name" {
		t.Error("HLSD_NODE_NAME should come from metadata.name, so that X-Hlsd-Node names the pod")
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	media := volumes["media"]
	if m := mounts["media"]; !m.ReadOnly || m.MountPath != env["HLSD_MEDIA"].Value ||
		media.PersistentVolumeClaim == nil || !media.PersistentVolumeClaim.ReadOnly {
		t.Errorf("the library must be mounted read-only at HLSD_MEDIA (%q): mount %+v, volume %+v", env["HLSD_MEDIA"].Value, m, media.VolumeSource)
	} else if claim := o.claims[media.PersistentVolumeClaim.ClaimName]; claim == nil || !slices.Contains(claim.Spec.AccessModes, corev1.ReadOnlyMany) {
		t.Errorf("the library's claim %q must exist and allow ReadOnlyMany, for every node to mount it", media.PersistentVolumeClaim.ClaimName)
	}
	var cacheClaim *corev1.PersistentVolumeClaim
	for i := range sts.Spec.VolumeClaimTemplates {
		if sts.Spec.VolumeClaimTemplates[i].Name == "cache" {
			cacheClaim = &sts.Spec.VolumeClaimTemplates[i]
		}
	}
	if m := mounts["cache"]; cacheClaim == nil || m.ReadOnly || m.MountPath != env["HLSD_CACHE"].Value {
		t.Errorf("the cache must be a writable per-node volume at HLSD_CACHE (%q)", env["HLSD_CACHE"].Value)
	} else {
		size := cacheClaim.Spec.Resources.Requests.Storage().Value()
		budget := parseSize(t, env["HLSD_CACHE_SIZE"].Value)
		if budget <= 0 || budget > size*95/100 {
			t.Errorf("HLSD_CACHE_SIZE %q leaves no room in a %d-byte cache volume for keyframes, plans and inits", env["HLSD_CACHE_SIZE"].Value, size)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("hlsd container: want a read-only root file system")
	} else if _, ok := mounts["tmp"]; !ok {
		t.Error("hlsd container: a read-only root needs a writable /tmp for ffmpeg")
	}
}

// TestHAProxy checks the load balancer's manifests: a Deployment mounting
// the ConfigMap, whose configuration hashes as deploy/haproxy/haproxy.cfg
// does and lists one server per hlsd replica by its stable DNS name, and
// which HAProxy itself accepts when it is installed.
func TestHAProxy(t *testing.T) {
	o := load(t)
	sts := o.statefulSets["hlsd"]
	cm := o.configMaps["haproxy"]
	dep := o.deployments["haproxy"]
	if sts == nil || cm == nil || dep == nil {
		t.Fatal("want the StatefulSet hlsd, the ConfigMap haproxy and the Deployment haproxy")
	}
	cfg := cm.Data["haproxy.cfg"]
	base, err := os.ReadFile("../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"balance", "hash-type", "option httpchk", "http-check expect", "retries", "option redispatch", "retry-on", "timeout server"} {
		if a, b := directive(string(base), key), directive(cfg, key); a == "" || a != b {
			t.Errorf("%q: %q in the ConfigMap, %q in deploy/haproxy/haproxy.cfg", key, b, a)
		}
	}
	var servers []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server (\S+) (\S+)`).FindAllStringSubmatch(cfg, -1) {
		servers = append(servers, m[1]+" "+m[2])
	}
	var want []string
	for i := 0; i < int(*sts.Spec.Replicas); i++ {
		pod := fmt.Sprintf("%s-%d", sts.Name, i)
		want = append(want, fmt.Sprintf("%s %s.%s.%s.svc.cluster.local:%d", pod, pod, sts.Spec.ServiceName, sts.Namespace, 7666))
	}
	if !slices.Equal(servers, want) {
		t.Errorf("HAProxy servers %q, want one per replica: %q", servers, want)
	}
	var mounted bool
	for _, v := range dep.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == cm.Name)
	}
	if !mounted || !matches(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Error("Deployment haproxy: must mount the ConfigMap haproxy and select its own pods")
	}
	front := o.services["hlsd"]
	if front == nil || !matches(front.Spec.Selector, dep.Spec.Template.Labels) {
		t.Error("Service hlsd must select the HAProxy pods")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		haproxy, err = exec.LookPath("/usr/sbin/haproxy")
	}
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy): its own check of the ConfigMap is skipped")
	}
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", f).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c refuses the ConfigMap's configuration: %v\n%s", err, out)
	}
}

// checkNamespaces: every object is in a namespace the manifests create.
func checkNamespaces(t *testing.T, o objects) {
	ns := func(kind, name, n string) {
		if o.namespaces[n] == nil {
			t.Errorf("%s %s is in namespace %q, which no manifest creates", kind, name, n)
		}
	}
	for n, v := range o.statefulSets {
		ns("StatefulSet", n, v.Namespace)
	}
	for n, v := range o.deployments {
		ns("Deployment", n, v.Namespace)
	}
	for n, v := range o.services {
		ns("Service", n, v.Namespace)
	}
	for n, v := range o.configMaps {
		ns("ConfigMap", n, v.Namespace)
	}
	for n, v := range o.claims {
		ns("PersistentVolumeClaim", n, v.Namespace)
	}
}

// checkEnvKnown: every HLSD_ variable is one hlsd reads (cmd/hlsd/main.go).
func checkEnvKnown(t *testing.T, env []corev1.EnvVar) {
	src, err := os.ReadFile("../../cmd/hlsd/main.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(HLSD_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		known[m[1]] = true
	}
	for _, e := range env {
		if strings.HasPrefix(e.Name, "HLSD_") && !known[e.Name] {
			t.Errorf("env %s: hlsd reads no such variable", e.Name)
		}
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// directive is the first line of cfg starting with key, spaces collapsed.
func directive(cfg, key string) string {
	for _, l := range strings.Split(cfg, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if strings.HasPrefix(l, key+" ") {
			return l
		}
	}
	return ""
}

// parseSize reads the sizes hlsd's --cache-size takes that the manifests use.
func parseSize(t *testing.T, s string) int64 {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			var v int64
			if _, err := fmt.Sscan(n, &v); err == nil {
				return v * u.mult
			}
		}
	}
	t.Errorf("size %q: want a whole number of MiB, GiB or TiB", s)
	return 0
}
