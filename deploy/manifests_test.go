package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// object is one parsed Kubernetes manifest.
type object map[string]any

// get walks a path of map keys and list indexes ("spec", "template", 0...).
func (o object) get(path ...any) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

func (o object) str(path ...any) string {
	s, _ := o.get(path...).(string)
	return s
}

func (o object) list(path ...any) []any {
	l, _ := o.get(path...).([]any)
	return l
}

func loadManifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	objs := map[string]object{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			// Decode into a plain map: yaml.v3 would give nested maps the
			// named type too, and get walks map[string]any.
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if m == nil {
				continue
			}
			o := object(m)
			if o.str("apiVersion") == "" || o.str("kind") == "" || o.str("metadata", "name") == "" {
				t.Fatalf("%s: an object without apiVersion, kind or metadata.name: %v", f, o)
			}
			objs[o.str("kind")+"/"+o.str("metadata", "name")] = o
		}
		fh.Close()
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	objs := loadManifests(t)
	for _, name := range []string{"Namespace/shoal", "Service/shoal-bootstrap", "StatefulSet/shoal-bootstrap", "DaemonSet/shoal"} {
		if objs[name] == nil {
			t.Fatalf("manifests lack %s (have %v)", name, mapsKeys(objs))
		}
	}
	for _, name := range []string{"StatefulSet/shoal-bootstrap", "DaemonSet/shoal"} {
		t.Run(name, func(t *testing.T) { checkWorkload(t, objs[name]) })
	}

	// The bootstrap Service must reach the bootstrap pods on both libp2p
	// transports, by the labels the StatefulSet gives them.
	svc, sts := objs["Service/shoal-bootstrap"], objs["StatefulSet/shoal-bootstrap"]
	sel, _ := svc.get("spec", "selector").(map[string]any)
	labels, _ := sts.get("spec", "template", "metadata", "labels").(map[string]any)
	if len(sel) == 0 {
		t.Fatal("bootstrap Service has no selector")
	}
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("bootstrap Service selects %s=%v; the StatefulSet's pods have %v", k, v, labels[k])
		}
	}
	var protos []string
	for _, p := range svc.list("spec", "ports") {
		po := object(p.(map[string]any))
		if po.get("port") != 4040 {
			t.Errorf("bootstrap Service port %v, want 4040", po.get("port"))
		}
		protos = append(protos, po.str("protocol"))
	}
	slices.Sort(protos)
	if !slices.Equal(protos, []string{"TCP", "UDP"}) {
		t.Errorf("bootstrap Service protocols %v, want TCP and UDP on 4040", protos)
	}
	if sts.str("spec", "serviceName") != "shoal-bootstrap" {
		t.Errorf("StatefulSet serviceName %q, want shoal-bootstrap", sts.str("spec", "serviceName"))
	}

	// Every DaemonSet pod bootstraps through that Service's DNS name.
	ds := objs["DaemonSet/shoal"]
	args := strings.Join(toStrings(ds.list("spec", "template", "spec", "containers", 0, "args")), " ")
	if !strings.Contains(args, "--bootstrap $(SHOAL_BOOTSTRAP)") || !strings.Contains(args, "--no-mdns") {
		t.Errorf("DaemonSet args %q: want --no-mdns and --bootstrap $(SHOAL_BOOTSTRAP)", args)
	}
	boot := object(ds.get("spec", "template", "spec", "containers", 0, "env", 0).(map[string]any))
	if boot.str("name") != "SHOAL_BOOTSTRAP" || boot.str("valueFrom", "configMapKeyRef", "name") != "shoal-bootstrap" {
		t.Errorf("DaemonSet env %v: want SHOAL_BOOTSTRAP from ConfigMap shoal-bootstrap", boot)
	}
	if ds.str("spec", "updateStrategy", "type") != "RollingUpdate" {
		t.Errorf("DaemonSet update strategy %q, want RollingUpdate", ds.str("spec", "updateStrategy", "type"))
	}
}

// checkWorkload checks the shoal container of a pod template: image, the
// daemon with its home on /data, libp2p ports, probes that run the CLI,
// resource limits and an unprivileged, read-only container.
func checkWorkload(t *testing.T, o object) {
	spec := object(o.get("spec", "template", "spec").(map[string]any))
	c := object(spec.get("containers", 0).(map[string]any))
	if img := c.str("image"); img != "shoal:dev" {
		t.Errorf("image %q, want shoal:dev (what make image builds)", img)
	}
	args := toStrings(c.list("args"))
	if len(args) == 0 || args[0] != "daemon" || !slices.Contains(args, "/data") {
		t.Errorf("args %v: want daemon --home /data ...", args)
	}
	ports := map[string]bool{}
	for _, p := range c.list("ports") {
		po := object(p.(map[string]any))
		ports[fmt.Sprintf("%v/%s", po.get("containerPort"), po.str("protocol"))] = true
	}
	if !ports["4040/TCP"] || !ports["4040/UDP"] {
		t.Errorf("container ports %v, want 4040/TCP and 4040/UDP", ports)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		cmd := toStrings(c.list(probe, "exec", "command"))
		if !slices.Equal(cmd, []string{"/shoal", "id", "--api", "http://127.0.0.1:5080"}) {
			t.Errorf("%s runs %v, want /shoal id --api http://127.0.0.1:5080", probe, cmd)
		}
		if c.get(probe, "periodSeconds") == nil || c.get(probe, "timeoutSeconds") == nil {
			t.Errorf("%s has no periodSeconds/timeoutSeconds", probe)
		}
	}
	for _, k := range []string{"cpu", "memory"} {
		if c.get("resources", "limits", k) == nil || c.get("resources", "requests", k) == nil {
			t.Errorf("resources lack a %s request or limit: %v", k, c.get("resources"))
		}
	}
	if spec.get("securityContext", "runAsNonRoot") != true || spec.get("securityContext", "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v: want runAsNonRoot and runAsUser 65532", spec.get("securityContext"))
	}
	if c.get("securityContext", "allowPrivilegeEscalation") != false || c.get("securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("container securityContext %v: want no privilege escalation and a read-only root", c.get("securityContext"))
	}
	mounts := map[string]bool{}
	for _, m := range c.list("volumeMounts") {
		mounts[object(m.(map[string]any)).str("mountPath")] = true
	}
	if !mounts["/data"] || !mounts["/tmp"] {
		t.Errorf("volume mounts %v: want /data (the home) and /tmp (read-only root)", mounts)
	}
}

func toStrings(l []any) []string {
	s := make([]string, 0, len(l))
	for _, v := range l {
		s = append(s, fmt.Sprint(v))
	}
	return s
}

func mapsKeys(m map[string]object) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// parseUnit reads a systemd unit into section -> key -> values (a key may
// repeat), as systemd does: comments, blank lines, continuation lines.
func parseUnit(r io.Reader) (map[string]map[string][]string, error) {
	units := map[string]map[string][]string{}
	var section, pending string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := pending + strings.TrimSpace(sc.Text())
		pending = ""
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSpace(strings.TrimSuffix(line, "\\")) + " "
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			units[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is neither a section nor KEY=VALUE", n, line)
			}
			units[section][strings.TrimSpace(k)] = append(units[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return units, sc.Err()
}

func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("shoal.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := parseUnit(f)
	if err != nil {
		t.Fatalf("shoal.service: %v", err)
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("shoal.service has no [%s] section", s)
		}
	}
	svc := u["Service"]
	exec := strings.Join(svc["ExecStart"], " ")
	if !strings.Contains(exec, "shoal daemon --home ${STATE_DIRECTORY}") {
		t.Errorf("ExecStart %q: want shoal daemon --home ${STATE_DIRECTORY}", exec)
	}
	want := map[string]string{
		"DynamicUser":           "yes",
		"StateDirectory":        "shoal",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"PrivateDevices":        "yes",
		"RestrictSUIDSGID":      "yes",
		"CapabilityBoundingSet": "",
		"Restart":               "on-failure",
	}
	for k, v := range want {
		got, ok := svc[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	if !slices.Contains(u["Unit"]["After"], "network-online.target") {
		t.Errorf("[Unit] After = %v, want network-online.target", u["Unit"]["After"])
	}
	if !slices.Contains(u["Install"]["WantedBy"], "multi-user.target") {
		t.Errorf("[Install] WantedBy = %v, want multi-user.target", u["Install"]["WantedBy"])
	}
}

func TestParseUnit(t *testing.T) {
	u, err := parseUnit(strings.NewReader("# c\n[A]\nK=1\nK=2\nL=a \\\n  b\n\n[B]\nM=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u["A"]["K"], []string{"1", "2"}) || u["A"]["L"][0] != "a b" || u["B"]["M"][0] != "" {
		t.Fatalf("parsed %v", u)
	}
	if _, err := parseUnit(strings.NewReader("K=1\n")); err == nil {
		t.Fatal("a key outside a section was accepted")
	}
	if _, err := parseUnit(strings.NewReader("[A]\nnonsense\n")); err == nil {
		t.Fatal("a line without = was accepted")
	}
}

// envOf maps a container's env names to their values, or to
// "secret:NAME/KEY", "configmap:NAME/KEY" and "field:PATH" for references.
func envOf(c object) map[string]string {
	env := map[string]string{}
	for _, e := range c.list("env") {
		eo := object(e.(map[string]any))
		name := eo.str("name")
		switch {
		case eo.get("valueFrom", "secretKeyRef") != nil:
			env[name] = "secret:" + eo.str("valueFrom", "secretKeyRef", "name") + "/" + eo.str("valueFrom", "secretKeyRef", "key")
		case eo.get("valueFrom", "configMapKeyRef") != nil:
			env[name] = "configmap:" + eo.str("valueFrom", "configMapKeyRef", "name") + "/" + eo.str("valueFrom", "configMapKeyRef", "key")
		case eo.get("valueFrom", "fieldRef") != nil:
			env[name] = "field:" + eo.str("valueFrom", "fieldRef", "fieldPath")
		default:
			env[name] = eo.str("value")
		}
	}
	return env
}

// rpcFlag is the value of --rpc-addr in a shoal command line (either
// "--rpc-addr X" or "--rpc-addr=X").
func rpcFlag(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--rpc-addr="); ok {
			return v
		}
		if a == "--rpc-addr" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkSidecar holds the pairing of one shoal daemon and its cluster
// peer: the RPC is on loopback (tokenless, which only the shared network
// namespace makes safe), the cluster's connector points at exactly that
// port, its REST API stays on loopback, every peer trusts the same
// secret's cluster and repins when a peer dies.
func checkSidecar(t *testing.T, where string, shoalArgs []string, env map[string]string, secret string) {
	t.Helper()
	rpc := rpcFlag(shoalArgs)
	host, port, ok := strings.Cut(rpc, ":")
	if !ok || host != "127.0.0.1" {
		t.Errorf("%s: shoal's --rpc-addr is %q; want 127.0.0.1:PORT (the cluster cannot send a token)", where, rpc)
	}
	if want := "/ip4/127.0.0.1/tcp/" + port; env["CLUSTER_IPFSHTTP_NODEMULTIADDRESS"] != want {
		t.Errorf("%s: the cluster's connector points at %q; shoal's RPC is %s", where, env["CLUSTER_IPFSHTTP_NODEMULTIADDRESS"], want)
	}
	if !strings.HasPrefix(env["CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS"], "/ip4/127.0.0.1/") {
		t.Errorf("%s: the cluster's REST API listens on %q; keep it on loopback (it has no auth here)", where, env["CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS"])
	}
	want := map[string]string{"CLUSTER_SECRET": secret, "CLUSTER_CRDT_TRUSTEDPEERS": "*", "CLUSTER_DISABLEREPINNING": "false",
		"CLUSTER_REPLICATIONFACTORMIN": "2", "CLUSTER_REPLICATIONFACTORMAX": "2"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s: %s = %q, want %q", where, k, env[k], v)
		}
	}
	for _, k := range []string{"CLUSTER_MONITORPINGINTERVAL", "CLUSTER_PUBSUBMON_CHECKINTERVAL"} {
		if env[k] == "" {
			t.Errorf("%s: no %s: the defaults (15 s pings and checks) leave a dead peer's pins unplaced for 30-45 s", where, k)
		}
	}
}

// TestFleetManifest: the Kubernetes fleet example runs each shoal daemon
// with its cluster peer in one pod, pod 0 bootstrapping the cluster under
// the Service's DNS name, each container on its own volume.
func TestFleetManifest(t *testing.T) {
	objs := loadManifests(t)
	sts, svc := objs["StatefulSet/shoal-fleet"], objs["Service/shoal-fleet"]
	if sts == nil || svc == nil {
		t.Fatalf("manifests lack StatefulSet/shoal-fleet or Service/shoal-fleet (have %v)", mapsKeys(objs))
	}
	checkWorkload(t, sts)
	containers := sts.list("spec", "template", "spec", "containers")
	if len(containers) != 2 {
		t.Fatalf("the fleet pod has %d containers, want shoal and ipfs-cluster", len(containers))
	}
	shoal, cluster := object(containers[0].(map[string]any)), object(containers[1].(map[string]any))
	if shoal.str("name") != "shoal" || cluster.str("name") != "ipfs-cluster" || !strings.HasPrefix(cluster.str("image"), "ipfs/ipfs-cluster:v1.1.6") {
		t.Fatalf("containers %q (%s), %q (%s); want shoal and ipfs-cluster (ipfs/ipfs-cluster:v1.1.6)", shoal.str("name"), shoal.str("image"), cluster.str("name"), cluster.str("image"))
	}
	env := envOf(cluster)
	checkSidecar(t, "StatefulSet/shoal-fleet", toStrings(shoal.list("args")), env, "secret:ipfs-cluster/CLUSTER_SECRET")
	if env["CLUSTER_PEERNAME"] != "field:metadata.name" {
		t.Errorf("CLUSTER_PEERNAME = %q, want the pod's name", env["CLUSTER_PEERNAME"])
	}

	// The script bootstraps to pod 0 by the Service's per-pod DNS name
	// and the cluster port the Service and the container declare.
	ns, name := sts.str("metadata", "namespace"), sts.str("metadata", "name")
	if sts.str("spec", "serviceName") != svc.str("metadata", "name") {
		t.Errorf("serviceName %q, Service %q", sts.str("spec", "serviceName"), svc.str("metadata", "name"))
	}
	script := strings.Join(toStrings(cluster.list("args")), "\n")
	boot := fmt.Sprintf("/dns4/%s-0.%s.%s.svc.cluster.local/tcp/9096/p2p/$BOOTSTRAP_PEER_ID", name, svc.str("metadata", "name"), ns)
	for _, want := range []string{boot, `CLUSTER_ID="$BOOTSTRAP_PEER_ID"`, `CLUSTER_PRIVATEKEY="$BOOTSTRAP_PEER_PRIV_KEY"`, "init --consensus crdt", `daemon --bootstrap "$boot"`} {
		if !strings.Contains(script, want) {
			t.Errorf("the cluster container's script lacks %q:\n%s", want, script)
		}
	}
	for _, k := range []string{"BOOTSTRAP_PEER_ID", "BOOTSTRAP_PEER_PRIV_KEY"} {
		if env[k] != "secret:ipfs-cluster/"+k {
			t.Errorf("%s = %q, want it from Secret ipfs-cluster", k, env[k])
		}
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.list("spec", "ports") {
		po := object(p.(map[string]any))
		svcPorts[fmt.Sprintf("%v/%s", po.get("port"), po.str("protocol"))] = true
	}
	for _, want := range []string{"4040/TCP", "4040/UDP", "9096/TCP"} {
		if !svcPorts[want] {
			t.Errorf("Service/shoal-fleet ports %v lack %s", svcPorts, want)
		}
	}
	sel, _ := svc.get("spec", "selector").(map[string]any)
	labels, _ := sts.get("spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("Service/shoal-fleet selects %s=%v; the pods have %v", k, v, labels[k])
		}
	}

	// Each container keeps its state on its own claim.
	claims := map[string]bool{}
	for _, c := range sts.list("spec", "volumeClaimTemplates") {
		claims[object(c.(map[string]any)).str("metadata", "name")] = true
	}
	mountOf := func(c object, path string) string {
		for _, m := range c.list("volumeMounts") {
			mo := object(m.(map[string]any))
			if mo.str("mountPath") == path {
				return mo.str("name")
			}
		}
		return ""
	}
	sv, cv := mountOf(shoal, "/data"), mountOf(cluster, env["IPFS_CLUSTER_PATH"])
	if !claims[sv] || !claims[cv] || sv == cv {
		t.Errorf("shoal keeps /data on %q, the cluster %s on %q; want two volume claims of %v", sv, env["IPFS_CLUSTER_PATH"], cv, claims)
	}
}

// TestFleetCompose: in the compose fleet each cluster peer shares its
// shoal daemon's network namespace and drives that daemon's RPC, with a
// volume of its own; and docker-compose, where installed, accepts it.
func TestFleetCompose(t *testing.T) {
	b, err := os.ReadFile("compose-fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			NetworkMode string            `yaml:"network_mode"`
			Networks    []string          `yaml:"networks"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("compose-fleet.yaml: %v", err)
	}
	secret := "${CLUSTER_SECRET:?set CLUSTER_SECRET to 64 hex digits, the same for every peer}"
	volumes := map[string]string{}
	pairs := 0
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			vol, _, _ := strings.Cut(v, ":")
			if other, dup := volumes[vol]; dup {
				t.Errorf("%s and %s share volume %s", name, other, vol)
			}
			volumes[vol] = name
			if _, ok := f.Volumes[vol]; !ok {
				t.Errorf("%s mounts %s, which is not a named volume of the file", name, vol)
			}
		}
		n, ok := strings.CutPrefix(name, "cluster")
		if !ok {
			continue
		}
		pairs++
		sh, ok := f.Services["shoal"+n]
		if !ok {
			t.Fatalf("%s has no shoal%s beside it", name, n)
		}
		if s.NetworkMode != "service:shoal"+n {
			t.Errorf("%s: network_mode %q, want service:shoal%s (the shared loopback its RPC is on)", name, s.NetworkMode, n)
		}
		if !strings.Contains(s.Image, "ipfs-cluster:v1.1.6") || !strings.HasPrefix(sh.Image, "${SHOAL_IMAGE:-shoal:dev}") {
			t.Errorf("images %q and %q: want ipfs-cluster v1.1.6 beside shoal:dev", s.Image, sh.Image)
		}
		if len(sh.Networks) == 0 {
			t.Errorf("shoal%s is on no network: the swarm needs one", n)
		}
		checkSidecar(t, name, sh.Command, s.Environment, secret)
		if s.Environment["CLUSTER_PEERNAME"] != name {
			t.Errorf("%s: CLUSTER_PEERNAME %q", name, s.Environment["CLUSTER_PEERNAME"])
		}
	}
	if pairs < 3 {
		t.Fatalf("%d shoal + cluster pairs; IPFS Cluster needs 3 to show replication 2 healing after a loss", pairs)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Log("docker-compose not installed: the file was parsed but not validated by compose")
		return
	}
	cmd := exec.Command("docker-compose", "-f", "compose-fleet.yaml", "config", "-q")
	cmd.Env = append(os.Environ(), "CLUSTER_SECRET="+strings.Repeat("ab", 32))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cmd = exec.Command("docker-compose", "-f", "compose-fleet.yaml", "config", "-q")
	cmd.Env = append(os.Environ(), "CLUSTER_SECRET=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "CLUSTER_SECRET") {
		t.Fatalf("docker-compose config without CLUSTER_SECRET: %v %s; want a refusal naming it", err, out)
	}
}
