// Command etcd is the etcd server of the version that the pinned Kubernetes
// release is tested with (go.etcd.io/etcd/server/v3, see go.mod).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

func main() {
	// The only change from a stock etcd: WAL segments of 8 MB instead of
	// 64 MB, preallocated two at a time, so that each test's data dir takes
	// about 16 MB of disk instead of about 128 MB.
	wal.SegmentSizeBytes = 8 << 20
	etcdmain.Main(os.Args)
}
