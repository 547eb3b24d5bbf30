// Package localtls creates the sandbox's local certificate authority and one
// leaf certificate per service under {data dir}/tls, on first start, so every
// hop is TLS without anyone running openssl by hand.
//
// Files: tls/ca.pem (trust this), tls/ca-key.pem, tls/<service>.pem and
// tls/<service>-key.pem. Three services may start at once, so creation
// happens under an exclusive file lock and every file is written atomically.
package localtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultHosts are the SANs of every leaf: loopback names and the
// docker-compose service names.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1", "ehr", "payer", "smartapp"}

// DefaultHosts returns the SANs every leaf carries.
func DefaultHosts() []string { return append([]string(nil), defaultHosts...) }

// Paths of one service's material.
type Paths struct {
	CA   string // the CA certificate to trust
	Cert string // leaf chain (leaf + CA)
	Key  string // leaf private key
}

// CAPath is where the CA certificate lives under dataDir.
func CAPath(dataDir string) string { return filepath.Join(dataDir, "tls", "ca.pem") }

// Ensure makes the CA (if missing) and the service's leaf (if missing, or
// expiring within 30 days, or not issued by the current CA) and returns the
// paths.
func Ensure(dataDir, service string, hosts []string) (Paths, error) {
	dir := filepath.Join(dataDir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Paths{}, fmt.Errorf("localtls: %w", err)
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return Paths{}, err
	}
	defer unlock()

	p := Paths{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, service+".pem"),
		Key:  filepath.Join(dir, service+"-key.pem"),
	}
	caCert, caKey, err := ensureCA(p.CA, filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return Paths{}, err
	}
	if leafValid(p.Cert, caCert, hosts) {
		return p, nil
	}
	if err := writeLeaf(p, caCert, caKey, service, hosts); err != nil {
		return Paths{}, err
	}
	return p, nil
}

// ServerConfig loads the leaf for a TLS listener (TLS 1.2 minimum).
func ServerConfig(p Paths) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return nil, fmt.Errorf("localtls: load %s: %w", p.Cert, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// RootPool is the system roots plus the sandbox CA at caFile.
func RootPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("localtls: read CA: %w", err)
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("localtls: %s holds no certificate", caFile)
	}
	return pool, nil
}

func ensureCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if cert, key, err := loadPair(certPath, keyPath); err == nil && time.Until(cert.NotAfter) > 30*24*time.Hour {
		return cert, key, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "DTR Sandbox Local CA", Organization: []string{"DTR Sandbox"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certPath, keyPath, [][]byte{der}, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func writeLeaf(p Paths, ca *x509.Certificate, caKey crypto.Signer, service string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: service, Organization: []string{"DTR Sandbox"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(p.Cert, p.Key, [][]byte{der, ca.Raw}, key)
}

// leafValid: present, issued by ca, covering hosts, good for 30 more days.
func leafValid(certPath string, ca *x509.Certificate, hosts []string) bool {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.CheckSignatureFrom(ca) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("localtls: bad PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("localtls: key is not a signer")
	}
	return cert, signer, nil
}

func writePair(certPath, keyPath string, ders [][]byte, key crypto.Signer) error {
	var certPEM []byte
	for _, der := range ders {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicWrite(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return err
	}
	return atomicWrite(certPath, certPEM, 0o644)
}

func atomicWrite(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localtls: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("localtls: lock: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// Service is the TLS a service needs on both sides: the listener config
// and the CA file its outbound client trusts. With TLS off both are zero.
type Service struct {
	Server *tls.Config // nil: plain HTTP
	CAFile string      // "": trust the system roots only
}

// ForService ensures the CA and the service's leaf under dataDir (when on)
// and loads them; every service's main starts with it.
func ForService(dataDir, service string, on bool) (Service, error) {
	if !on {
		return Service{}, nil
	}
	p, err := Ensure(dataDir, service, DefaultHosts())
	if err != nil {
		return Service{}, err
	}
	cfg, err := ServerConfig(p)
	if err != nil {
		return Service{}, err
	}
	return Service{Server: cfg, CAFile: p.CA}, nil
}
