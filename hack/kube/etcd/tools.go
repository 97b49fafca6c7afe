//go:build tools

// Package tools pins the etcd server (package main at the module root of
// go.etcd.io/etcd/server/v3) in go.mod. etcd lives in its own module because
// its dependency versions (grpc, otel, ...) conflict with Kubernetes'.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
