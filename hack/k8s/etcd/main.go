// Command etcd is etcd's server, built from the go.etcd.io/etcd/server/v3 module.
// `go install go.etcd.io/etcd/server/v3@v3.6.x` fails because etcd's go.mod relies on
// replace lines; this module depends on the published modules instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
