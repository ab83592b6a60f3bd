// Package deploy holds no code: its test checks docker-compose.yml and the configuration files
// of its cluster profile (deploy/cluster/), which no container engine runs here, against each
// other and against Truthboard's settings, the way `docker compose config` and the servers
// would read them.
package deploy

import (
	"encoding/xml"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/truthboard/truthboard/internal/config"
)

type compose struct {
	Services map[string]service `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

type service struct {
	Profiles    []string          `yaml:"profiles"`
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   any               `yaml:"depends_on"`
	Networks    any               `yaml:"networks"`
}

// dependsOn lists a service's dependencies, in either of compose's forms.
func (s service) dependsOn() []string {
	switch d := s.DependsOn.(type) {
	case []any:
		var out []string
		for _, x := range d {
			out = append(out, x.(string))
		}
		return out
	case map[string]any:
		var out []string
		for k := range d {
			out = append(out, k)
		}
		return out
	}
	return nil
}

func load(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// interpolate replaces ${VAR:-default} by its default and ${VAR:?message} by sample, as
// compose does with the variable unset (or, for the required ones, set to sample).
func interpolate(v, sample string) string {
	re := regexp.MustCompile(`\$\{(\w+)(:-([^}]*)|:\?[^}]*)?\}`)
	return re.ReplaceAllStringFunc(v, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if strings.HasPrefix(sub[2], ":?") {
			return sample
		}
		return sub[3]
	})
}

var clusterServices = []string{"keeper", "clickhouse-1", "clickhouse-2", "nats", "truthboard-1", "truthboard-2", "load-balancer"}

func TestComposeClusterProfile(t *testing.T) {
	c := load(t)
	for _, name := range []string{"clickhouse", "truthboard"} {
		if s, ok := c.Services[name]; !ok || len(s.Profiles) != 0 {
			t.Errorf("service %s: want it without a profile, so that `docker compose up` runs one node as before", name)
		}
	}
	for _, name := range clusterServices {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("the cluster profile has no service %s", name)
			continue
		}
		if !slices.Equal(s.Profiles, []string{"cluster"}) {
			t.Errorf("service %s: profiles %v, want [cluster]", name, s.Profiles)
		}
		for _, dep := range s.dependsOn() {
			if _, ok := c.Services[dep]; !ok || !slices.Contains(clusterServices, dep) {
				t.Errorf("service %s depends on %s, which is not a service of the cluster profile", name, dep)
			}
		}
		if s.Build == nil {
			if i := strings.LastIndex(s.Image, ":"); i < 0 || s.Image[i+1:] == "latest" || !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(s.Image[i+1:]) {
				t.Errorf("service %s: image %q is not pinned to an exact release", name, s.Image)
			}
		}
		for _, v := range s.Volumes {
			source, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(source, "./") {
				if _, err := os.Stat(filepath.Join("..", source)); err != nil {
					t.Errorf("service %s mounts %s, which is missing: %v", name, source, err)
				}
			} else if _, ok := c.Volumes[source]; !ok {
				t.Errorf("service %s mounts the volume %s, which volumes: does not declare", name, source)
			}
		}
	}
	if a, b := c.Services["clickhouse-1"].Image, c.Services["clickhouse-2"].Image; a != b || a != c.Services["keeper"].Image {
		t.Errorf("the replicas and the keeper run %q, %q and %q: one release for all", a, b, c.Services["keeper"].Image)
	}
	if !slices.Contains(c.Services["nats"].Command, "-js") {
		t.Errorf("nats runs %v, without JetStream (-js): claims need it", c.Services["nats"].Command)
	}
}

// The nodes' settings are Truthboard's, valid together, and name the other services.
func TestComposeNodeSettings(t *testing.T) {
	c := load(t)
	known := config.EnvNames()
	ch := clickHouseConfig(t)
	lb := c.Services["load-balancer"]
	lbNet, _ := lb.Networks.(map[string]any)
	lbAddr := ""
	if n, ok := lbNet["cluster"].(map[string]any); ok {
		lbAddr, _ = n["ipv4_address"].(string)
	}
	for _, name := range []string{"truthboard", "truthboard-1", "truthboard-2"} {
		env := map[string]string{}
		for k, v := range c.Services[name].Environment {
			if !slices.Contains(known, k) {
				t.Errorf("service %s: %s is not a Truthboard setting (truthboard help lists them)", name, k)
			}
			env[k] = interpolate(v, "compose-test-credential-0123456789")
		}
		cfg, err := config.Load(nil, func(k string) string { return env[k] }, os.Stderr)
		if err != nil {
			t.Errorf("service %s: its settings are refused: %v", name, err)
			continue
		}
		if name == "truthboard" {
			continue
		}
		if cfg.ClickHouseCluster != ch.cluster {
			t.Errorf("service %s: TRUTHBOARD_CLICKHOUSE_CLUSTER=%q, the servers' remote_servers name %q", name, cfg.ClickHouseCluster, ch.cluster)
		}
		var hosts []string
		for _, a := range strings.Split(cfg.ClickHouseAddr, ",") {
			host, port, _ := net.SplitHostPort(a)
			hosts = append(hosts, host)
			if _, ok := c.Services[host]; !ok || port != "9000" {
				t.Errorf("service %s: ClickHouse address %s is not a replica's native port", name, a)
			}
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, ch.replicas) {
			t.Errorf("service %s: ClickHouse addresses %v, the cluster's replicas %v", name, hosts, ch.replicas)
		}
		u, err := url.Parse(cfg.NATSURL)
		if err != nil || u.Hostname() != "nats" {
			t.Errorf("service %s: TRUTHBOARD_NATS_URL=%q does not name the nats service", name, cfg.NATSURL)
		}
		if len(cfg.TrustedProxies) != 1 || cfg.TrustedProxies[0] != lbAddr {
			t.Errorf("service %s: TRUTHBOARD_TRUSTED_PROXIES=%v, want the load balancer's address %s", name, cfg.TrustedProxies, lbAddr)
		}
		if _, port, _ := net.SplitHostPort(cfg.Listen); !strings.Contains(haproxyConfig(t), name+":"+port) {
			t.Errorf("service %s listens on port %s, which the load balancer's deploy/cluster/haproxy.cfg does not send to", name, port)
		}
	}
	if audits := c.Services["truthboard-2"].Environment["TRUTHBOARD_AUDIT_INTERVAL"]; audits != "0" {
		t.Errorf("truthboard-2 runs the rollup audit too (TRUTHBOARD_AUDIT_INTERVAL=%q): one node only", audits)
	}
	subnet := c.Networks["cluster"].IPAM.Config
	if len(subnet) != 1 {
		t.Fatalf("network cluster: want one subnet, for the load balancer's fixed address")
	}
	prefix, err := netip.ParsePrefix(subnet[0].Subnet)
	addr, err2 := netip.ParseAddr(lbAddr)
	if err != nil || err2 != nil || !prefix.Contains(addr) {
		t.Errorf("the load balancer's address %q is not in the cluster network %q", lbAddr, subnet[0].Subnet)
	}
	if ports := lb.Ports; len(ports) != 1 || !strings.HasPrefix(interpolate(ports[0], ""), "127.0.0.1:") || !strings.HasSuffix(ports[0], ":8080") {
		t.Errorf("load-balancer publishes %v, want 127.0.0.1:<port>:8080 (haproxy.cfg binds :8080)", ports)
	}
	if !strings.Contains(haproxyConfig(t), "bind :8080") {
		t.Error("deploy/cluster/haproxy.cfg does not bind :8080")
	}
}

func haproxyConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("cluster/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type clickHouse struct {
	cluster  string
	replicas []string // hosts, sorted
}

// clickHouseConfig reads the replicas' configuration and checks it against the keeper's and
// the compose file's.
func clickHouseConfig(t *testing.T) clickHouse {
	t.Helper()
	var conf struct {
		ZooKeeper struct {
			Node []struct {
				Host string `xml:"host"`
				Port string `xml:"port"`
			} `xml:"node"`
		} `xml:"zookeeper"`
		RemoteServers struct {
			Clusters []struct {
				XMLName xml.Name
				Shards  []struct {
					Replicas []struct {
						Host string `xml:"host"`
						Port string `xml:"port"`
					} `xml:"replica"`
				} `xml:"shard"`
			} `xml:",any"`
		} `xml:"remote_servers"`
	}
	readXML(t, "cluster/clickhouse-cluster.xml", &conf)
	var keeper struct {
		Server struct {
			TCPPort string `xml:"tcp_port"`
		} `xml:"keeper_server"`
	}
	readXML(t, "cluster/keeper.xml", &keeper)
	if len(conf.ZooKeeper.Node) != 1 || conf.ZooKeeper.Node[0].Host != "keeper" || conf.ZooKeeper.Node[0].Port != keeper.Server.TCPPort {
		t.Errorf("the replicas' keeper %+v is not the keeper service at its tcp_port %s", conf.ZooKeeper.Node, keeper.Server.TCPPort)
	}
	if len(conf.RemoteServers.Clusters) != 1 || len(conf.RemoteServers.Clusters[0].Shards) != 1 {
		t.Fatalf("remote_servers: want one cluster of one shard")
	}
	var out clickHouse
	out.cluster = conf.RemoteServers.Clusters[0].XMLName.Local
	macros := map[string]bool{}
	for i, r := range conf.RemoteServers.Clusters[0].Shards[0].Replicas {
		out.replicas = append(out.replicas, r.Host)
		var m struct {
			Macros struct {
				Shard   string `xml:"shard"`
				Replica string `xml:"replica"`
			} `xml:"macros"`
		}
		readXML(t, "cluster/macros-ch"+strconv.Itoa(i+1)+".xml", &m)
		if m.Macros.Shard == "" || m.Macros.Replica == "" || macros[m.Macros.Replica] {
			t.Errorf("macros-ch%d.xml: shard %q, replica %q: each replica needs both, and a replica name of its own", i+1, m.Macros.Shard, m.Macros.Replica)
		}
		macros[m.Macros.Replica] = true
	}
	slices.Sort(out.replicas)
	return out
}

func readXML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
