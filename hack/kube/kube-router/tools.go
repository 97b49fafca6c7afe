//go:build tools

// kube-router's NetworkPolicy firewall for the real node (its router, proxy and CNI stay off):
// pinned here so that build.sh builds it from the Go module like the other programs.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
