package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
)

// Errors a caller may test for with errors.Is.
var (
	// ErrKeyNotFound: no key in the set has the requested kid.
	ErrKeyNotFound = errors.New("jwks: no key with that kid")
	// ErrKeyMismatch: a key with the kid exists but cannot verify the alg
	// (wrong type, wrong curve, too small, or its own "alg" differs).
	ErrKeyMismatch = errors.New("jwks: key does not fit the algorithm")
	// ErrUnsupportedAlg: the alg is not an asymmetric JWS algorithm we verify.
	ErrUnsupportedAlg = errors.New("jwks: unsupported algorithm")
)

// curveFor is the curve RFC 7518 §3.4 binds to each ECDSA alg.
func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

func isRSAAlg(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return true
	}
	return false
}

// KeyFitsAlg reports whether pub can verify alg (see checkKeyFitsAlg); use it
// on keys that did not come through FindKey. The error wraps ErrKeyMismatch
// or ErrUnsupportedAlg.
func KeyFitsAlg(pub crypto.PublicKey, alg string) error { return checkKeyFitsAlg(pub, alg) }

// checkKeyFitsAlg reports whether pub can verify alg: RSA (at least 2048
// bits) for RS*/PS* (RFC 7518 §3.3, §3.5), ECDSA on the alg's own curve for
// ES256/ES384/ES512 (RFC 7518 §3.4).
func checkKeyFitsAlg(pub crypto.PublicKey, alg string) error {
	switch {
	case isRSAAlg(alg):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: %s needs an RSA key, got %s", ErrKeyMismatch, alg, keyTypeName(pub))
		}
		if k.N == nil || k.N.BitLen() < rsaBits {
			return fmt.Errorf("%w: RSA key smaller than %d bits", ErrKeyMismatch, rsaBits)
		}
		return nil
	case curveFor(alg) != nil:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: %s needs an EC key, got %s", ErrKeyMismatch, alg, keyTypeName(pub))
		}
		if want := curveFor(alg); k.Curve != want {
			return fmt.Errorf("%w: %s needs curve %s, got %s", ErrKeyMismatch, alg, want.Params().Name, curveName(k.Curve))
		}
		return nil
	default:
		return fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "none"
	}
	return c.Params().Name
}

func keyTypeName(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "RSA public key"
	case *ecdsa.PublicKey:
		return "EC public key"
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return "private key"
	case []byte:
		return "symmetric key"
	case nil:
		return "no key"
	default:
		return fmt.Sprintf("%T", k)
	}
}

func marshalPKCS8(priv crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("jwks: marshal PKCS#8: %w", err)
	}
	return der, nil
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T (want RSA or ECDSA)", k)
	}
}
