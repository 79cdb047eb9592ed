// Command nacosprobe drives the official Go Nacos client (github.com/nacos-group/nacos-sdk-go/v2,
// gRPC) one stdin line at a time, so that tribridge's tests can prove
// interop/nacos_emulator.py with it.  Same line protocol as the Java NacosProbe:
//
//	REGISTER service group ip port [k=v&k=v]   -> OK registered
//	DEREGISTER service group ip port            -> OK deregistered
//	LIST service group                          -> OK [instances as JSON]
//	SUBSCRIBE service group                     -> OK subscribed; then EVENT {json} per change
//	UNSUBSCRIBE service group                   -> OK unsubscribed
//	SERVICES group                              -> OK {"count":n,"names":[...]}
//	STATUS                                      -> OK UP|DOWN
//	EXIT
//
// Errors answer "ERR <message>".  Flags: -server host:port, -namespace id, -dir for logs and cache.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

var outMu sync.Mutex

func say(format string, a ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", a...)
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type inst struct {
	IP        string            `json:"ip"`
	Port      uint64            `json:"port"`
	Healthy   bool              `json:"healthy"`
	Enabled   bool              `json:"enabled"`
	Ephemeral bool              `json:"ephemeral"`
	Weight    float64           `json:"weight"`
	Cluster   string            `json:"cluster"`
	Service   string            `json:"serviceName"`
	Metadata  map[string]string `json:"metadata"`
}

func view(list []model.Instance) []inst {
	out := []inst{}
	for _, i := range list {
		out = append(out, inst{i.Ip, i.Port, i.Healthy, i.Enable, i.Ephemeral, i.Weight,
			i.ClusterName, i.ServiceName, i.Metadata})
	}
	return out
}

func metadata(spec string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(spec, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func run(c naming_client.INamingClient, p []string) (string, error) {
	switch p[0] {
	case "REGISTER":
		port, _ := strconv.ParseUint(p[4], 10, 64)
		md := map[string]string{}
		if len(p) > 5 {
			md = metadata(p[5])
		}
		_, err := c.RegisterInstance(vo.RegisterInstanceParam{Ip: p[3], Port: port, ServiceName: p[1],
			GroupName: p[2], Weight: 1, Enable: true, Healthy: true, Ephemeral: true, Metadata: md})
		return "registered", err
	case "DEREGISTER":
		port, _ := strconv.ParseUint(p[4], 10, 64)
		_, err := c.DeregisterInstance(vo.DeregisterInstanceParam{Ip: p[3], Port: port,
			ServiceName: p[1], GroupName: p[2], Ephemeral: true})
		return "deregistered", err
	case "LIST":
		l, err := c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: p[1], GroupName: p[2]})
		return asJSON(view(l)), err
	case "SUBSCRIBE":
		svc, group := p[1], p[2]
		err := c.Subscribe(&vo.SubscribeParam{ServiceName: svc, GroupName: group,
			SubscribeCallback: callback(svc, group)})
		return "subscribed", err
	case "UNSUBSCRIBE":
		err := c.Unsubscribe(&vo.SubscribeParam{ServiceName: p[1], GroupName: p[2],
			SubscribeCallback: callback(p[1], p[2])})
		return "unsubscribed", err
	case "SERVICES":
		l, err := c.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: p[1], PageNo: 1, PageSize: 100})
		return asJSON(map[string]any{"count": l.Count, "names": l.Doms}), err
	case "STATUS":
		if c.ServerHealthy() {
			return "UP", nil
		}
		return "DOWN", nil
	}
	return "", fmt.Errorf("unknown command %s", p[0])
}

var callbacks = map[string]func([]model.Instance, error){}

// callback is one function per service: the SDK keys unsubscription on the callback's identity.
func callback(svc, group string) func([]model.Instance, error) {
	key := group + "@@" + svc
	if cb, ok := callbacks[key]; ok {
		return cb
	}
	cb := func(list []model.Instance, err error) {
		if err != nil {
			say("EVENT %s", asJSON(map[string]any{"service": svc, "group": group, "error": err.Error()}))
			return
		}
		say("EVENT %s", asJSON(map[string]any{"service": svc, "group": group, "instances": view(list)}))
	}
	callbacks[key] = cb
	return cb
}

func main() {
	server := flag.String("server", "127.0.0.1:8848", "Nacos server host:port (gRPC on port+1000)")
	dir := flag.String("dir", os.TempDir(), "directory for the SDK's log and cache")
	namespace := flag.String("namespace", "", "namespace id (empty: public)")
	flag.Parse()
	host, portText, _ := strings.Cut(*server, ":")
	port, _ := strconv.ParseUint(portText, 10, 64)
	cc := constant.NewClientConfig(
		constant.WithNotLoadCacheAtStart(true),
		constant.WithTimeoutMs(5000),
		constant.WithLogDir(*dir+"/log"),
		constant.WithCacheDir(*dir+"/cache"),
		constant.WithLogLevel("warn"),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithNamespaceId(*namespace),
	)
	c, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: cc,
		ServerConfigs: []constant.ServerConfig{*constant.NewServerConfig(host, port)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(2)
	}
	status, _ := run(c, []string{"STATUS"})
	say("READY %s", status)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		p := strings.Fields(in.Text())
		if len(p) == 0 {
			continue
		}
		if p[0] == "EXIT" {
			say("OK bye")
			c.CloseClient()
			return
		}
		out, err := run(c, p)
		if err != nil {
			say("ERR %s", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			say("OK %s", out)
		}
	}
	c.CloseClient()
}
