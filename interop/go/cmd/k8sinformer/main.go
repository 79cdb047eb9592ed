// Command k8sinformer runs the official k8s.io/client-go shared informers (list + watch) on
// EndpointSlices and Endpoints against an API server, and prints one JSON line per event, so
// that tribridge's tests can prove interop/k8s_emulator.py with the real client.
//
//	k8sinformer -server http://127.0.0.1:PORT -namespace NS [-selector kubernetes.io/service-name=svc]
//
// Output: "SYNCED" once both caches have synced, then
// {"kind":"EndpointSlice","type":"ADDED|UPDATED|DELETED","name":...,"rv":...,"ready":["ip:port",...]}
// per event.  It exits when stdin closes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var outMu sync.Mutex

func emit(v any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Println(string(b))
}

// ready lists ip:port of every endpoint a client should route to (ready not false, not terminating).
func sliceReady(s *discoveryv1.EndpointSlice) []string {
	out := []string{}
	for _, ep := range s.Endpoints {
		if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
			continue
		}
		if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
			continue
		}
		for _, a := range ep.Addresses {
			for _, p := range s.Ports {
				if p.Port != nil {
					out = append(out, a+":"+strconv.Itoa(int(*p.Port)))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func endpointsReady(e *corev1.Endpoints) []string {
	out := []string{}
	for _, ss := range e.Subsets {
		for _, a := range ss.Addresses {
			for _, p := range ss.Ports {
				out = append(out, a.IP+":"+strconv.Itoa(int(p.Port)))
			}
		}
	}
	sort.Strings(out)
	return out
}

func describe(kind, typ string, obj any) map[string]any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m := map[string]any{"kind": kind, "type": typ}
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		m["name"], m["rv"], m["ready"] = o.Name, o.ResourceVersion, sliceReady(o)
		m["service"] = o.Labels[discoveryv1.LabelServiceName]
	case *corev1.Endpoints:
		m["name"], m["rv"], m["ready"] = o.Name, o.ResourceVersion, endpointsReady(o)
	}
	return m
}

func handler(kind string) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { emit(describe(kind, "ADDED", obj)) },
		UpdateFunc: func(_, obj any) { emit(describe(kind, "UPDATED", obj)) },
		DeleteFunc: func(obj any) { emit(describe(kind, "DELETED", obj)) },
	}
}

func main() {
	server := flag.String("server", "", "API server URL (http://127.0.0.1:PORT)")
	namespace := flag.String("namespace", "default", "namespace to watch")
	selector := flag.String("selector", "", "label selector for EndpointSlices")
	resync := flag.Duration("resync", 0, "informer resync period")
	flag.Parse()
	cfg := &rest.Config{Host: *server, Timeout: 30 * time.Second}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	stop := make(chan struct{})
	slices := informers.NewSharedInformerFactoryWithOptions(cs, *resync,
		informers.WithNamespace(*namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = *selector }))
	plain := informers.NewSharedInformerFactoryWithOptions(cs, *resync, informers.WithNamespace(*namespace))
	sliceInf := slices.Discovery().V1().EndpointSlices().Informer()
	epInf := plain.Core().V1().Endpoints().Informer()
	if _, err := sliceInf.AddEventHandler(handler("EndpointSlice")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := epInf.AddEventHandler(handler("Endpoints")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	slices.Start(stop)
	plain.Start(stop)
	go func() {
		if !cache.WaitForCacheSync(stop, sliceInf.HasSynced, epInf.HasSynced) {
			fmt.Fprintln(os.Stderr, "cache sync failed")
			os.Exit(3)
		}
		emit(map[string]any{"kind": "SYNCED"})
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
}
