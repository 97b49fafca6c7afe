//go:build tools

// Package tools pins kwok in go.mod so the build is reproducible from go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
