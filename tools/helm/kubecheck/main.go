// Command kubecheck validates rendered Kubernetes manifests against a real API server.
//
// It starts etcd and kube-apiserver inside this process, both on 127.0.0.1 and on ports the kernel picks, installs
// the CustomResourceDefinitions of the operators the chart can target (crds.go) and those it is given (for real), creates a namespace whose Pod Security admission warns at the
// "restricted" level, and then sends every object of every manifest file as a server-side apply with dryRun=All and
// fieldValidation=Strict: what `kubectl apply --server-side --dry-run=server` sends. An object passes when the server
// accepts it without a single warning (unknown or duplicate fields, deprecated APIs and Pod Security violations all
// come back as warnings or errors). Nothing is ever stored but the CRDs and the namespace, in a temporary directory
// that is removed at exit.
//
//	kubecheck [--crd file]... manifest.yaml...
//
// It prints one line per refused object and one summary line per file, and exits 1 when any object was refused,
// 2 when the server could not be started.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/sys/unix"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// checkNamespace is where namespaced objects without a namespace of their own are sent.
const checkNamespace = "kubecheck"

// fieldManager names this tool in the server-side apply requests.
const fieldManager = "kubecheck"

type crdFlags []string

func (c *crdFlags) String() string     { return strings.Join(*c, ",") }
func (c *crdFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	var crds crdFlags
	flag.Var(&crds, "crd", "a CustomResourceDefinition file to install before the checks (repeatable)")
	logFile := flag.String("log", "", "where the API server and etcd write their logs (default: discarded)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: kubecheck [--crd file]... [--log file] manifest.yaml...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(crds, flag.Args(), *logFile))
}

func run(crds []string, manifests []string, logFile string) int {
	// kube-apiserver and etcd log to stderr (klog, zap) whatever they are told: the process's stderr goes to the log
	// file, and this tool's own messages to a copy of the original.
	if logFile == "" {
		logFile = os.DevNull
	} else if err := os.WriteFile(logFile, nil, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "kubecheck: %v\n", err)
		return 2
	}
	logs, errOut, err := redirectStderr(logFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubecheck: %v\n", err)
		return 2
	}
	klog.SetOutput(logs)

	dir, err := os.MkdirTemp("", "kubecheck-")
	if err != nil {
		fmt.Fprintf(errOut, "kubecheck: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)

	started := time.Now()
	cfg, warnings, err := startServers(dir, logs)
	if err != nil {
		fmt.Fprintf(errOut, "kubecheck: starting the API server: %v\n", err)
		return 2
	}
	fmt.Printf("kubecheck: kube-apiserver and etcd ready in %.1fs\n", time.Since(started).Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := newChecker(cfg, warnings)
	if err != nil {
		fmt.Fprintf(errOut, "kubecheck: %v\n", err)
		return 2
	}
	for _, crd := range builtinCRDs() {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
		if err == nil {
			err = c.installCRD(ctx, &unstructured.Unstructured{Object: obj})
		}
		if err != nil {
			fmt.Fprintf(errOut, "kubecheck: installing the %s CRD: %v\n", crd.Spec.Names.Kind, err)
			return 2
		}
	}
	for _, file := range crds {
		objs, err := readObjects(file)
		for _, obj := range objs {
			if err == nil {
				err = c.installCRD(ctx, obj)
			}
		}
		if err != nil {
			fmt.Fprintf(errOut, "kubecheck: installing %s: %v\n", file, err)
			return 2
		}
	}
	if err := c.ensureNamespace(ctx, checkNamespace); err != nil {
		fmt.Fprintf(errOut, "kubecheck: %v\n", err)
		return 2
	}

	refusedTotal := 0
	for _, file := range manifests {
		accepted, refused, err := c.checkFile(ctx, file)
		if err != nil {
			fmt.Printf("kubecheck %s: FAIL %v\n", file, err)
			refusedTotal++
			continue
		}
		refusedTotal += refused
		fmt.Printf("kubecheck %s: %d objects accepted, %d refused\n", file, accepted, refused)
	}
	if refusedTotal > 0 {
		return 1
	}
	return 0
}

// redirectStderr points file descriptor 2 at a file (appending); it returns a writer to the file, and one to the
// original standard error for this tool's own messages.
func redirectStderr(file string) (logs io.Writer, stderr io.Writer, err error) {
	original, err := unix.Dup(2)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		return nil, nil, err
	}
	return f, os.NewFile(uintptr(original), "/dev/stderr"), nil
}

// warningLog collects the warnings the API server sends back, so that each request can be judged by its own.
type warningLog struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningLog) HandleWarningHeader(code int, agent string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, text)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.messages
	w.messages = nil
	return m
}

// freePort asks the kernel for a free port on loopback.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startServers(dir string, logs io.Writer) (*rest.Config, *warningLog, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}

	ecfg := embed.NewConfig()
	ecfg.Dir = filepath.Join(dir, "etcd")
	ecfg.LogLevel = "error"
	clientURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peerURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	ecfg.ListenClientUrls = []url.URL{*clientURL}
	ecfg.AdvertiseClientUrls = []url.URL{*clientURL}
	ecfg.ListenPeerUrls = []url.URL{*peerURL}
	ecfg.AdvertisePeerUrls = []url.URL{*peerURL}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	etcd, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return nil, nil, errors.New("etcd did not become ready within 60s")
	}

	// The service-account key pair and a static token for this tool, which the server puts in system:masters.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	keyFile := filepath.Join(dir, "sa.key")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	token := fmt.Sprintf("kubecheck-%d", time.Now().UnixNano())
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+",kubecheck,kubecheck,system:masters\n"), 0o600); err != nil {
		return nil, nil, err
	}

	cmd := apiserver.NewAPIServerCommand()
	cmd.SetOut(logs)
	cmd.SetErr(logs)
	cmd.SetArgs([]string{
		"--etcd-servers=" + clientURL.String(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints are reconciled to the advertised address, which may not be loopback.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubecheck.invalid",
		"--service-account-key-file=" + keyFile,
		"--service-account-signing-key-file=" + keyFile,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--v=0",
	})
	failed := make(chan error, 1)
	go func() { failed <- cmd.Execute() }()

	warnings := &warningLog{}
	cfg := &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", apiPort),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		WarningHandler:  warnings,
		QPS:             200,
		Burst:           400,
	}
	if err := waitReady(cfg, failed); err != nil {
		return nil, nil, err
	}
	return cfg, warnings, nil
}

// waitReady polls /readyz until the server answers ok, or it exits, or two minutes pass.
func waitReady(cfg *rest.Config, failed <-chan error) error {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-failed:
			return fmt.Errorf("kube-apiserver exited: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, cfg.Host+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("kube-apiserver was not ready within 2 minutes")
}

type checker struct {
	dynamic  dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warningLog
	made     map[string]bool
}

func newChecker(cfg *rest.Config, warnings *warningLog) (*checker, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	return &checker{dynamic: dyn, mapper: mapper, warnings: warnings, made: map[string]bool{}}, nil
}

// readObjects splits a multi-document YAML file into objects, skipping empty documents.
func readObjects(file string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(doc) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: doc})
	}
}

// installCRD creates a CustomResourceDefinition (for real) and waits until its kind is served.
func (c *checker) installCRD(ctx context.Context, obj *unstructured.Unstructured) error {
	if obj.GetKind() != "CustomResourceDefinition" {
		return fmt.Errorf("%s/%s is not a CustomResourceDefinition", obj.GetKind(), obj.GetName())
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := c.dynamic.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return err
	}
	c.warnings.take()
	group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "kind")
	return c.waitServed(ctx, schema.GroupKind{Group: group, Kind: kind})
}

// waitServed waits until discovery lists a kind that was just defined.
func (c *checker) waitServed(ctx context.Context, gk schema.GroupKind) error {
	deadline := time.Now().Add(time.Minute)
	for {
		c.mapper.Reset()
		if _, err := c.mapper.RESTMapping(gk); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not served a minute after its CRD was created", gk)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureNamespace creates a namespace (for real) whose Pod Security admission enforces and warns at "restricted".
func (c *checker) ensureNamespace(ctx context.Context, name string) error {
	if c.made[name] {
		return nil
	}
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata": map[string]any{
			"name": name,
			"labels": map[string]any{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
				"pod-security.kubernetes.io/audit":   "restricted",
			},
		},
	}}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	if _, err := c.dynamic.Resource(gvr).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	c.warnings.take()
	c.made[name] = true
	return nil
}

// checkFile sends every object of one file as a dry-run server-side apply; it returns how many were accepted and
// how many refused, printing why each refused one was.
func (c *checker) checkFile(ctx context.Context, file string) (int, int, error) {
	objs, err := readObjects(file)
	if err != nil {
		return 0, 0, err
	}
	if len(objs) == 0 {
		return 0, 0, errors.New("no objects in the file")
	}
	seen := map[string]bool{}
	accepted, refused := 0, 0
	refuse := func(what string, format string, args ...any) {
		refused++
		fmt.Printf("kubecheck %s: %s: refused: %s\n", file, what, fmt.Sprintf(format, args...))
	}
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		what := fmt.Sprintf("%s/%s", gvk.Kind, obj.GetName())
		if gvk.Kind == "" || gvk.Version == "" || obj.GetName() == "" {
			refuse(what, "an object needs apiVersion, kind and metadata.name")
			continue
		}
		mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			refuse(what, "the server does not serve %s: %v", gvk, err)
			continue
		}
		ns := obj.GetNamespace()
		var resource dynamic.ResourceInterface = c.dynamic.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if ns == "" {
				ns = checkNamespace
			}
			if err := c.ensureNamespace(ctx, ns); err != nil {
				return accepted, refused, err
			}
			resource = c.dynamic.Resource(mapping.Resource).Namespace(ns)
		} else if ns != "" {
			refuse(what, "a cluster-scoped object has metadata.namespace %q", ns)
			continue
		}
		key := fmt.Sprintf("%s %s/%s", gvk.GroupKind(), ns, obj.GetName())
		if seen[key] {
			refuse(what, "rendered twice in the same file")
			continue
		}
		seen[key] = true

		body, err := obj.MarshalJSON()
		if err != nil {
			refuse(what, "%v", err)
			continue
		}
		c.warnings.take()
		force := true
		_, err = resource.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
			DryRun:          []string{metav1.DryRunAll},
			FieldManager:    fieldManager,
			FieldValidation: "Strict",
			Force:           &force,
		})
		warned := c.warnings.take()
		switch {
		case err != nil:
			refuse(what, "%v", err)
		case len(warned) > 0:
			sort.Strings(warned)
			refuse(what, "warnings: %s", strings.Join(warned, "; "))
		default:
			accepted++
		}
	}
	return accepted, refused, nil
}
