// Command coredns is CoreDNS with only the plugins the real node's cluster DNS uses: the cluster
// zone from the Kubernetes API, nothing forwarded anywhere (no forward plugin is even compiled in,
// so no Corefile can make it resolve outside names).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
