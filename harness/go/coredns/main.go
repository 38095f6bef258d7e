// CoreDNS with only the plugins the real node's cluster DNS uses (docs/local-cluster.md): Service and pod names
// from the API server (kubernetes), the fixture sites' test names (hosts), health and readiness for the pod's
// probes, a cache, and error logging. CoreDNS documents building it from its own main package with a chosen
// plugin list; fewer plugins keep the build small.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins handle a query: CoreDNS's own order (its plugin.cfg), restricted to the above.
var directives = []string{"ready", "health", "errors", "log", "cache", "hosts", "kubernetes"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
