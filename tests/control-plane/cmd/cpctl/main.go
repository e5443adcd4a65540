// Command cpctl does for scripts/control-plane what bash can't do nicely:
// certificates and keys, free loopback ports, readiness waits, kubeconfigs,
// and compacting etcd. It talks to loopback addresses only.
//
//	cpctl pki DIR                   CA, apiserver serving cert, admin client cert
//	                                (O=system:masters), ServiceAccount key pair
//	cpctl ports N                   N distinct free 127.0.0.1 ports below the
//	                                ephemeral range, one a line
//	cpctl port-free PORT            exit 0 if 127.0.0.1:PORT can be bound, else 1
//	cpctl wait [flags] URL...       GET each URL in turn until it answers 200
//	cpctl kubeconfig [flags] OUT    write a kubeconfig (token read from stdin)
//	cpctl compact ENDPOINT          compact etcd to its current revision (printed)
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "pki":
		err = cmdPKI(args)
	case "ports":
		err = cmdPorts(args)
	case "port-free":
		err = cmdPortFree(args)
	case "wait":
		err = cmdWait(args)
	case "kubeconfig":
		err = cmdKubeconfig(args)
	case "compact":
		err = cmdCompact(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpctl %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cpctl pki DIR | ports N | port-free PORT | wait [-ca F -cert F -key F -pid N -timeout D] URL... | kubeconfig -server URL -ca F (-cert F -key F | -token-stdin) [-user U] [-namespace NS] OUT | compact ENDPOINT")
	os.Exit(2)
}

// ---- pki ----

func cmdPKI(args []string) error {
	if len(args) != 1 {
		usage()
	}
	dir := args[0]
	now := time.Now().Add(-time.Hour) // tolerate a little clock skew
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "configsnap-test-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "ca", caDER, caKey); err != nil {
		return err
	}

	leaf := func(name string, subj pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) error {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      subj,
			NotBefore:    now,
			NotAfter:     now.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		return writeCertKey(dir, name, der, key)
	}
	if err := leaf("apiserver", pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}); err != nil {
		return err
	}
	if err := leaf("admin", pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writeCertKey(dir, name string, der []byte, key *rsa.PrivateKey) error {
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// ---- ports ----

func cmdPorts(args []string) error {
	if len(args) != 1 {
		usage()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 64 {
		return fmt.Errorf("bad count %q", args[0])
	}
	// Ports outside the kernel's ephemeral range: no outgoing connection
	// (kube-apiserver's to etcd, a test's to kube-apiserver) takes one as
	// its local port, so a restarted kube-apiserver gets its port back.
	lo, hi := 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if el, err := strconv.Atoi(f[0]); err == nil && el > lo+1000 {
				hi = el
			}
		}
	}
	// Hold every listener until all are picked so the ports are distinct.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return fmt.Errorf("no %d free ports in 127.0.0.1:%d-%d", n, lo, hi-1)
		}
		port, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)))
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+int(port.Int64()))))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	fmt.Println(strings.Join(out, "\n"))
	return nil
}

func cmdPortFree(args []string) error {
	if len(args) != 1 {
		usage()
	}
	addr := net.JoinHostPort("127.0.0.1", args[0])
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is taken: %v", addr, err)
	}
	return l.Close()
}

// ---- wait ----

func tlsClient(caFile, certFile, keyFile string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil, DisableKeepAlives: true},
	}, nil
}

func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	caFile := fs.String("ca", "", "CA bundle for https URLs")
	certFile := fs.String("cert", "", "client certificate")
	keyFile := fs.String("key", "", "client key")
	pid := fs.Int("pid", 0, "give up as soon as this process is gone")
	timeout := fs.Duration("timeout", 90*time.Second, "overall bound")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		usage()
	}
	client, err := tlsClient(*caFile, *certFile, *keyFile)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for _, url := range fs.Args() {
		var last string
		for {
			if *pid > 0 && !alive(*pid) {
				return fmt.Errorf("process %d exited while waiting for %s (last: %s)", *pid, url, last)
			}
			resp, err := client.Get(url)
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, lastLines(body, 6))
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s (last: %s)", url, *timeout, last)
			}
			time.Sleep(150 * time.Millisecond)
		}
	}
	return nil
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie (exited, not yet reaped) counts as gone.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ---- kubeconfig ----

func cmdKubeconfig(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ExitOnError)
	server := fs.String("server", "", "https URL of the apiserver")
	caFile := fs.String("ca", "", "CA certificate (embedded)")
	certFile := fs.String("cert", "", "client certificate (embedded)")
	keyFile := fs.String("key", "", "client key (embedded)")
	tokenStdin := fs.Bool("token-stdin", false, "read a bearer token from standard input")
	user := fs.String("user", "admin", "user and context name")
	namespace := fs.String("namespace", "", "context namespace")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *server == "" || *caFile == "" || (*certFile == "") == !*tokenStdin {
		usage()
	}
	b64 := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := b64(*caFile)
	if err != nil {
		return err
	}
	var cred string
	if *tokenStdin {
		tok, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			return err
		}
		t := strings.TrimSpace(string(tok))
		if t == "" || strings.ContainsAny(t, " \t\r\n\"'") {
			return errors.New("no usable token on standard input")
		}
		cred = "    token: " + t + "\n"
	} else {
		crt, err := b64(*certFile)
		if err != nil {
			return err
		}
		key, err := b64(*keyFile)
		if err != nil {
			return err
		}
		cred = "    client-certificate-data: " + crt + "\n    client-key-data: " + key + "\n"
	}
	ns := ""
	if *namespace != "" {
		ns = "    namespace: " + strconv.Quote(*namespace) + "\n"
	}
	u := strconv.Quote(*user)
	doc := "apiVersion: v1\nkind: Config\nclusters:\n- name: control-plane\n  cluster:\n" +
		"    server: " + strconv.Quote(*server) + "\n    certificate-authority-data: " + ca + "\n" +
		"users:\n- name: " + u + "\n  user:\n" + cred +
		"contexts:\n- name: " + u + "\n  context:\n    cluster: control-plane\n    user: " + u + "\n" + ns +
		"current-context: " + u + "\npreferences: {}\n"
	out := fs.Arg(0)
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// ---- compact ----

const compactRevKey = "compact_rev_key"

func cmdCompact(args []string) error {
	if len(args) != 1 {
		usage()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{args[0]},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Any read returns the store's current revision in its header.
	resp, err := cli.Get(ctx, compactRevKey)
	if err != nil {
		return err
	}
	rev := resp.Header.Revision
	// Record the revision under the key kube-apiserver's own compactor uses
	// (k8s.io/apiserver/pkg/storage/etcd3/compact.go), as that compactor
	// does, so the apiserver knows how far etcd is compacted.
	ver := int64(0)
	if len(resp.Kvs) > 0 {
		ver = resp.Kvs[0].Version
	}
	if _, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Version(compactRevKey), "=", ver),
	).Then(
		clientv3.OpPut(compactRevKey, strconv.FormatInt(rev, 10)),
	).Commit(); err != nil {
		return err
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		// Already compacted to this revision is fine: nothing older is left.
		if !strings.Contains(err.Error(), "required revision has been compacted") {
			return err
		}
	}
	fmt.Println(rev)
	return nil
}
